"""Schema fields that only newer hosts' V3 API has, given to io.Schema only where it has them.

`search_aliases` (other words the node search finds a node by) is a field of comfy_api's io.Schema
from ComfyUI 0.11 on (comfy_api/latest/_io.py, `class Schema`); 0.3.75's Schema has no such field
and would reject the keyword. Every node module spreads `**search_aliases(...)` into its Schema.
"""
from __future__ import annotations

import dataclasses

from comfy_api.latest import io

SCHEMA_FIELDS = frozenset(field.name for field in dataclasses.fields(io.Schema))


def search_aliases(*aliases: str) -> dict[str, list[str]]:
    """{"search_aliases": [...]} for io.Schema(**...) on a host whose Schema has the field, else {}."""
    return {"search_aliases": list(aliases)} if "search_aliases" in SCHEMA_FIELDS else {}
