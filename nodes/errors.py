"""One format for every input error the pack raises, so users see node, input, value and the fix."""
from __future__ import annotations


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
    if value is None or value in choices:
        return True
    return str(node_error(node_id, input_name, value, " | ".join(map(str, choices))))
