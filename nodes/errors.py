"""One format for every input error the pack raises, so users see node, input, value and the fix.

The checks a schema declares (options, ranges, links) are derived from it in nodes/validation.py;
the run-time checks here are those a schema cannot express.
"""
from __future__ import annotations


def node_error(node_id: str, input_name: str, value, allowed: str) -> ValueError:
    """ValueError "<node>: input '<name>' = <value> is not allowed; expected <allowed>"."""
    shown = repr(value)
    if len(shown) > 120:
        shown = shown[:117] + "..."
    return ValueError(f"{node_id}: input '{input_name}' = {shown} is not allowed; expected {allowed}")


def require_model(node_id: str, input_name: str, model):
    """At run time: a MODEL input that holds something else (a JSON null reaches execute as None)."""
    if not callable(getattr(model, "get_model_object", None)):
        shown = model if model is None or isinstance(model, (str, int, float)) else type(model).__name__
        raise node_error(node_id, input_name, shown, "a MODEL: link the input to a model loader's MODEL output")
    return model


def check_sigmas(node_id: str, input_name: str, sigmas) -> None:
    """At run time: SIGMAS must be a non-empty 1-D tensor of finite, non-negative, strictly
    decreasing values (what every host scheduler returns; FlipSigmas output is not)."""
    import torch

    if not isinstance(sigmas, torch.Tensor) or sigmas.ndim != 1 or sigmas.numel() == 0:
        shown = type(sigmas).__name__ if not isinstance(sigmas, torch.Tensor) else f"a tensor of shape {list(sigmas.shape)}"
        raise node_error(node_id, input_name, shown, "a non-empty 1-D SIGMAS tensor from a scheduler node")
    values = sigmas.detach().double().cpu()
    if not bool(torch.isfinite(values).all()) or bool((values < 0).any()):
        raise node_error(node_id, input_name, values.tolist(), "finite, non-negative sigmas")
    if values.numel() > 1 and not bool((values[1:] < values[:-1]).all()):
        raise node_error(node_id, input_name, values.tolist(), "strictly decreasing sigmas (noisy to clean)")
