"""One format for every input error the pack raises, so users see node, input, value and the fix."""
from __future__ import annotations

import math


def node_error(node_id: str, input_name: str, value, allowed: str) -> ValueError:
    """ValueError "<node>: input '<name>' = <value> is not allowed; expected <allowed>"."""
    shown = repr(value)
    if len(shown) > 120:
        shown = shown[:117] + "..."
    return ValueError(f"{node_id}: input '{input_name}' = {shown} is not allowed; expected {allowed}")


def check_choice(node_id: str, input_name: str, value, choices) -> bool | str:
    """For a V3 node's validate_inputs: ComfyUI 0.3.75 does not check V3 combo values itself.

    Returns True, or the message the host shows as a validation error on the node (HTTP 400 with
    node_errors; the graph is not queued). A linked input arrives as None and is checked at run time.
    """
    choices = tuple(choices)  # tuple membership compares by ==: a dict or list value cannot raise
    if value is None or value in choices:
        return True
    return str(node_error(node_id, input_name, value, " | ".join(map(str, choices))))


def check_number(node_id: str, input_name: str, value, minimum, maximum) -> bool | str:
    """For validate_inputs: a finite number in [minimum, maximum], else the message.

    The host converts INT/FLOAT widget values before validate_inputs sees them, but float("nan")
    and float("inf") pass its min/max check; and once validate_inputs takes an input the host no
    longer checks that input's min/max at all, so the range is checked here. Links arrive as None.
    """
    if value is None:
        return True
    finite = isinstance(value, int) or (isinstance(value, float) and math.isfinite(value))  # 10**400 is an int
    if isinstance(value, bool) or not finite or not minimum <= value <= maximum:
        return str(node_error(node_id, input_name, value, f"a finite number in {minimum}..{maximum}"))
    return True


def check_numbers(schema, **values) -> bool | str:
    """check_number for several INT/FLOAT inputs, with the bounds the node's schema declares."""
    declared = {spec.id: spec for spec in schema.inputs}
    for name, value in values.items():
        spec = declared[name]
        minimum = -math.inf if spec.min is None else spec.min
        maximum = math.inf if spec.max is None else spec.max
        checked = check_number(schema.node_id, name, value, minimum, maximum)
        if checked is not True:
            return checked
    return True


def check_link(node_id: str, input_name: str, value, io_type: str) -> bool | str:
    """For validate_inputs: a socket input (MODEL, IMAGE, …) must be a link, which arrives as None;
    anything else is a literal typed into the API JSON, which the host would pass on unchecked."""
    if value is None:
        return True
    return str(node_error(node_id, input_name, value, f"a link from a {io_type} output, [node_id, output_index]"))


def first_problem(*checks) -> bool | str:
    """The first message among validate_inputs checks, or True when all pass."""
    return next((check for check in checks if check is not True), True)


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
