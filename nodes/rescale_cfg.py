"""ZSNRRescaleCFG: paper Algorithm 2 as a post-CFG function, for every model family, chainable.

Why post-CFG and a correction: the host's cfg-function slot holds one function (its RescaleCFG
replaces, or is replaced by, any other guidance node). Post-CFG functions form a list run in
graph order, each receiving the `denoised` the previous one returned. We add to that incoming
`denoised` the change our rescale makes to plain CFG, computed from the raw cond/uncond
predictions, so an earlier guidance (cfg slot or post-CFG) keeps its effect and ours is added.
"""
from __future__ import annotations

import logging
import math
import weakref

import comfy.model_sampling
import torch
from comfy_api.latest import io

from ..samplers.guidance import rescaled_cfg_x0_change, unguided_x0_change, work_dtype
from ..samplers.prediction import SPACES
from ..schedules.conversions import flow_pair, vp_pair
from ..schedules.snr_zero import is_snr_zero
from .errors import node_error, require_model
from .host_sampling import (
    EPSILON,
    IMAGE_VELOCITY,
    V_PREDICTION,
    VELOCITY,
    X0,
    is_flow,
    prediction_class,
    prediction_kind,
)
from .schema_extras import search_aliases
from .validation import SchemaCheckedNode, check_arguments

LOG = logging.getLogger("zsnr")
NODE_ID = "ZSNRRescaleCFG"
SPACE_CHOICES = ("auto",) + SPACES
TERMINAL_STEPS = ("guided", "unguided")
SIGMA_UNBOUNDED = 1e9  # the host's percent_to_sigma(0) is 999999999.9: "from the very first step"


def model_family(model_sampling) -> tuple[str, str]:
    """(auto space, path) of a host ModelSampling; see web/docs/ZSNRRescaleCFG.md for the choice.

    Decided by what the model's own prediction class outputs (host_sampling.prediction_kind):
    eps and v models (also CogVideoX's V_PREDICTION_DDPM): v, as the paper and the host's
    RescaleCFG. Flow velocity (CONST, COSMOS_RFLOW): the flow velocity, what the model predicts
    (upstream ComfyUI's later flow branch rescales x0 instead; pick space = x0 to match it). Models
    whose output is x0 (EDM's preconditioned x0, X0, IMG_TO_IMG_FLOW) and IMG_TO_IMG_VELOCITY (newer
    hosts; its output is the image-to-image velocity input - x0, not the flow velocity the v space
    assumes): x0. Unknown: x0, the one space that needs no knowledge of the parameterisation.
    """
    kind = prediction_kind(prediction_class(model_sampling))
    flow = is_flow(model_sampling)
    if kind in (V_PREDICTION, EPSILON):
        return "v", "vp"
    if kind == VELOCITY and flow:
        return "v", "flow"
    if kind in (X0, "edm", IMAGE_VELOCITY):
        return "x0", "flow" if flow else "vp"
    return "x0", "unknown"


def model_pair(model_sampling, path: str, sigma: torch.Tensor, x: torch.Tensor):
    """(x_t, signal, noise, x0 unit) for the host's sample x at sigma, with x_t = signal·x0 +
    noise·eps the input the model itself sees (its prediction class's calculate_input: x/sqrt(sigma²
    + sigma_data²) for EPS/V/EDM, the raw sample for V_PREDICTION_DDPM and CONST, x/(1+sigma) for
    COSMOS_RFLOW), so v here is the v the network outputs.

    VP: x0 measured in sigma_data; the SNR-0 sentinel of a zero-terminal-SNR ModelSampling
    (zsnr_terminal_sigma) makes signal exactly 0 there. Flow: (1-s, s) with s = sigma, or
    sigma/(1+sigma) for COSMOS_RFLOW. The pair stays on sigma's device (device_pair).
    """
    finite = torch.isfinite(sigma)
    x_t = model_sampling.calculate_input(torch.where(finite, sigma, torch.zeros_like(sigma)), x)
    x_t = torch.where(comfy.model_sampling.reshape_sigma(finite, x.ndim), x_t, torch.zeros_like(x_t))
    dtype = work_dtype(x.dtype)
    if path == "flow":
        signal, noise = device_pair("flow", sigma, rflow=isinstance(model_sampling, comfy.model_sampling.COSMOS_RFLOW))
        return x_t, signal.to(dtype), noise.to(dtype), 1.0
    sigma_data = float(getattr(model_sampling, "sigma_data", 1.0))
    signal, noise = device_pair("vp", sigma, sigma_data, getattr(model_sampling, "zsnr_terminal_sigma", None))
    return x_t, signal.to(dtype), noise.to(dtype), sigma_data


def device_pair(path: str, sigma: torch.Tensor, sigma_data: float = 1.0, terminal_sigma: float | None = None,
                rflow: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """schedules/conversions.py's vp_pair / flow_pair on sigma's device (on_device: no host-device
    synchronisation per step, tests/host/test_host_syncs.py); Cosmos RFlow's sigma is converted
    to the flow time sigma/(1+sigma) first."""
    if path == "flow":
        return flow_pair(sigma / (1 + sigma) if rflow else sigma, on_device=True)
    return vp_pair(sigma, sigma_data, terminal_sigma, on_device=True)


def at_terminal_step(model_sampling, path: str, signal: torch.Tensor, sigma: torch.Tensor,
                     top_sigmas: weakref.WeakKeyDictionary) -> torch.Tensor:
    """Per-sample bool: the SNR-0 step, exactly (signal = 0) or the clamped terminal step of a
    zero-terminal-SNR discrete schedule (the host's zsnr option ends at alphā = 4.9e-8, not 0).
    top_sigmas: ModelSampling -> float(sigmas[-1]), the one host read, filled once per ModelSampling."""
    terminal = signal == 0
    if path == "vp" and getattr(model_sampling, "zsnr", False) and hasattr(model_sampling, "sigmas"):
        if model_sampling not in top_sigmas:
            top_sigmas[model_sampling] = float(model_sampling.sigmas[-1])
        terminal = terminal | is_snr_zero(sigma.detach().to(signal.dtype), top_sigmas[model_sampling])
    return terminal


def make_post_cfg_function(multiplier: float, space: str, terminal_step: str, sigma_start: float, sigma_end: float):
    """The host post-CFG function: args → denoised (see comfy.samplers.cfg_function).

    No host-device synchronisation per step (tests/host/test_host_syncs.py counts them):
    the sigma window and the terminal step are masks on the device, applied with torch.where, not
    Python branches on `.any()`; the one float read, a model's top sigma for the unguided
    terminal step, happens once per ModelSampling object (the first step)."""
    warned = set()
    windowed = sigma_start < math.inf or sigma_end > 0
    top_sigmas = weakref.WeakKeyDictionary()  # ModelSampling -> float(sigmas[-1]), read once

    def rescale_cfg_post(args):
        denoised = args["denoised"]
        cond_scale = args["cond_scale"]
        uncond_denoised = args.get("uncond_denoised")
        if args.get("uncond") is None or uncond_denoised is None or math.isclose(cond_scale, 1.0):
            return denoised  # the cfg1 optimisation skipped the unconditional pass: nothing to rescale
        if multiplier == 0 and terminal_step == "guided":
            return denoised  # φ = 0 is plain CFG: leave the incoming result bit for bit
        sigma = args["sigma"].reshape(-1)
        cond_denoised, x = args["cond_denoised"], args["input"]
        model_sampling = args["model"].model_sampling
        auto_space, path = model_family(model_sampling)
        chosen = auto_space if space == "auto" else space
        if path == "unknown":
            if chosen != "x0" and type(model_sampling) not in warned:
                warned.add(type(model_sampling))
                LOG.warning("zsnr: %s: unknown model sampling %s; rescaling in x0 instead of %s",
                            NODE_ID, type(model_sampling).__name__, chosen)
            chosen, path = "x0", "vp"
        x_t, signal, noise, unit = model_pair(model_sampling, path, sigma, x)
        x0_cond, x0_uncond = cond_denoised / unit, uncond_denoised / unit
        change = unit * rescaled_cfg_x0_change(x0_cond, x0_uncond, cond_scale, multiplier, chosen, path,
                                               x_t, signal, noise)
        shape = (-1,) + (1,) * (change.ndim - 1)
        if terminal_step == "unguided":
            terminal = at_terminal_step(model_sampling, path, signal, sigma, top_sigmas)
            unguided = unguided_x0_change(cond_denoised, uncond_denoised, cond_scale)
            change = torch.where(terminal.to(change.device).view(shape), unguided, change)
        if windowed:
            in_window = (sigma <= sigma_start) & (sigma >= sigma_end)
            change = torch.where(in_window.to(change.device).view(shape), change, torch.zeros_like(change))
        return denoised + change.to(denoised.dtype)

    return rescale_cfg_post


class ZSNRRescaleCFG(SchemaCheckedNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id=NODE_ID,
            display_name="Rescale CFG (zsnr)",
            category="model/patch",
            **search_aliases("rescale cfg", "rescalecfg", "cfg rescale", "guidance rescale", "over-exposure"),
            description=(
                "Rescale classifier-free guidance (Lin et al. 2023, §3.4, Algorithm 2): scale the guided "
                "prediction back to the spread of the conditional one, against the over-exposure CFG causes "
                "with zero terminal SNR. Chains with other guidance nodes; works for eps, v, EDM and flow models."
            ),
            inputs=[
                io.Model.Input("model", tooltip="Any diffusion or flow model; the returned model rescales its CFG."),
                io.Float.Input("multiplier", default=0.7, min=0.0, max=1.0, step=0.01,
                               tooltip="φ: 0 = plain CFG, 1 = fully rescaled. The paper uses 0.7."),
                io.Combo.Input("space", options=list(SPACE_CHOICES), default="auto",
                               tooltip="Prediction in which the std is matched. auto: v for eps/v models (paper, "
                                       "host RescaleCFG), flow velocity for flow models, x0 for EDM/x0 models."),
                io.Combo.Input("terminal_step", options=list(TERMINAL_STEPS), default="guided",
                               tooltip="unguided: at the SNR-0 step use the conditional prediction alone (there "
                                       "the model only predicts the data mean, paper §5.2; A1111 PR #15607)."),
                io.Float.Input("sigma_start", default=SIGMA_UNBOUNDED, min=0.0, max=SIGMA_UNBOUNDED, step=0.01,
                               optional=True,
                               tooltip="Apply only at sigma <= sigma_start (default: from the first step)."),
                io.Float.Input("sigma_end", default=0.0, min=0.0, max=SIGMA_UNBOUNDED, step=0.01, optional=True,
                               tooltip="Apply only at sigma >= sigma_end (default: to the last step)."),
            ],
            outputs=[io.Model.Output(tooltip="A clone of the model with the rescale added after CFG.")],
        )

    @classmethod
    def execute(cls, model, multiplier=0.7, space="auto", terminal_step="guided", sigma_start=None,
                sigma_end=None) -> io.NodeOutput:
        check_arguments(cls, model=model, multiplier=multiplier, space=space, terminal_step=terminal_step,
                        sigma_start=sigma_start, sigma_end=sigma_end)
        require_model(NODE_ID, "model", model)
        sigma_start = SIGMA_UNBOUNDED if sigma_start is None else sigma_start
        sigma_end = 0.0 if sigma_end is None else sigma_end
        if sigma_start < sigma_end:  # the one rule across inputs: a schema bounds each input alone
            raise node_error(NODE_ID, "sigma_start", sigma_start,
                             f"sigma_start >= sigma_end ({sigma_end}): the window is sigma_end <= sigma <= sigma_start")
        # The widget's maximum, its default, means "no upper bound": the host's first sigma may exceed it.
        start = math.inf if sigma_start >= SIGMA_UNBOUNDED else float(sigma_start)
        patched = model.clone()
        patched.set_model_sampler_post_cfg_function(
            make_post_cfg_function(float(multiplier), space, terminal_step, start, float(sigma_end)))
        return io.NodeOutput(patched)


NODES = [ZSNRRescaleCFG]
