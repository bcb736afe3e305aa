"""What a host ModelSampling object is: its prediction class, and what that class predicts.

The host composes every model's sampling object on the fly from a schedule class (a torch Module:
ModelSamplingDiscrete, ModelSamplingDiscreteFlow, …) and a prediction class (EPS, V_PREDICTION,
V_PREDICTION_DDPM, CONST, …) that owns the input scaling and the x0 formula (upstream
comfy/model_base.py, `model_sampling()`; comfy/model_sampling.py). The pack patches and reads
models through this module only, so a prediction class added to the host later keeps its own
formulas, and is classified by the formula it really uses, not by its name.
"""
from __future__ import annotations

import functools

import comfy.model_sampling
import torch

V_PREDICTION, EPSILON, X0, VELOCITY = "v_prediction", "epsilon", "x0", "flow_velocity"
# upstream comfy/model_sampling.py after 0.33.0: IMG_TO_IMG_VELOCITY(CONST), x0 = input - output
IMAGE_VELOCITY = "image_velocity"

# The host prediction classes whose calculate_denoised we know, by what their output is. Classes
# missing from a host (V_PREDICTION_DDPM is new since 0.3.75, IMG_TO_IMG_VELOCITY since 0.33.0) are simply absent. EDM's output is a
# scaled x0-residual, not v, and X0's is x0 itself; neither needs nor gets an SNR-0 override.
_KNOWN_DENOISED = (("V_PREDICTION", V_PREDICTION), ("V_PREDICTION_DDPM", V_PREDICTION), ("EPS", EPSILON),
                   ("EDM", "edm"), ("X0", X0), ("CONST", VELOCITY), ("COSMOS_RFLOW", VELOCITY),
                   ("IMG_TO_IMG_FLOW", X0), ("IMG_TO_IMG_VELOCITY", IMAGE_VELOCITY))


@functools.cache
def _known_denoised() -> dict[type, str]:
    ms = comfy.model_sampling
    return {getattr(ms, name): kind for name, kind in _KNOWN_DENOISED if hasattr(ms, name)}


def prediction_class(sampling) -> type | None:
    """The host prediction class a sampling object is composed with: the first class of its MRO
    that defines calculate_denoised or calculate_input, is not a torch Module (the schedule half)
    and is not ours."""
    return _prediction_class_of(type(sampling))


# ZSNRRescaleCFG asks at every model call and a class's MRO never changes; bounded, because the host
# defines a new composed class for every model it loads (comfy/model_base.py, model_sampling())
@functools.lru_cache(maxsize=64)
def _prediction_class_of(sampling_type: type) -> type | None:
    for cls in sampling_type.__mro__:
        if issubclass(cls, torch.nn.Module) or not cls.__module__.startswith("comfy."):
            continue
        if "calculate_denoised" in vars(cls) or "calculate_input" in vars(cls):
            return cls
    return None


@functools.lru_cache(maxsize=64)
def prediction_kind(cls: type | None) -> str | None:
    """What the model output means for a host prediction class, judged by the class that really
    defines its calculate_denoised (a later subclass that only changes the input scaling keeps
    its parent's kind; one that changes the x0 formula is unknown: None)."""
    if cls is None:
        return None
    owner = next((c for c in cls.__mro__ if "calculate_denoised" in vars(c)), None)
    return _known_denoised().get(owner)


def standard_prediction_class(kind: str) -> type:
    """The host's plain class for a kind a user can declare (VPredictionAdapter)."""
    return {V_PREDICTION: comfy.model_sampling.V_PREDICTION, EPSILON: comfy.model_sampling.EPS}[kind]


def has_standard_input(cls: type) -> bool:
    """True if the class scales its input like EPS (x/sqrt(sigma² + sigma_data²)); CogVideoX's
    V_PREDICTION_DDPM passes the raw sample instead."""
    owner = next((c for c in cls.__mro__ if "calculate_input" in vars(c)), None)
    return owner is comfy.model_sampling.EPS


def is_flow(sampling) -> bool:
    """Flow-matching sampling (rectified flow, Cosmos RFlow): it already ends at SNR 0."""
    ms = comfy.model_sampling
    return isinstance(sampling, (ms.CONST, ms.COSMOS_RFLOW))


def describe_sampling(sampling) -> str:
    """The host classes a sampling object is made of, e.g. "ModelSamplingDiscrete/V_PREDICTION_DDPM"
    (the host names its composed class "ModelSampling" or "ModelSamplingAdvanced", which says nothing)."""
    host_bases = [c.__name__ for c in type(sampling).__mro__ if c.__module__ == comfy.model_sampling.__name__]
    return "/".join(dict.fromkeys(host_bases)) or type(sampling).__name__
