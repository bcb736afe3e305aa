"""One format for every input error the pack raises, so users see node, input, value and the fix."""
from __future__ import annotations


def node_error(node_id: str, input_name: str, value, allowed: str) -> ValueError:
    """ValueError "<node>: input '<name>' = <value> is not allowed; expected <allowed>"."""
    shown = repr(value)
    if len(shown) > 120:
        shown = shown[:117] + "..."
    return ValueError(f"{node_id}: input '{input_name}' = {shown} is not allowed; expected {allowed}")
