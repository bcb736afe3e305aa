"""Workflows as users share them (the frontend's "UI" format) → the API format POST /prompt takes.

The UI format stores widget values as a positional list per node; their names come from the
node's schema in /object_info (input_order), with the frontend's extra "control_after_generate"
value after seed-like INT inputs. Links are [id, from_node, from_slot, to_node, to_slot, type].
"""
from __future__ import annotations

import json
from pathlib import Path

WIDGET_TYPES = {"INT", "FLOAT", "STRING", "BOOLEAN", "COMBO"}
SEED_NAMES = {"seed", "noise_seed"}
# Frontend-only nodes: never sent to the server.
UI_ONLY_TYPES = {"Note", "MarkdownNote", "PrimitiveNode", "Reroute"}
MUTED, BYPASSED = 2, 4


class WorkflowError(ValueError):
    pass


def load(path: str | Path) -> dict:
    return json.loads(Path(path).read_text())


def _is_widget(spec) -> bool:
    kind = spec[0]
    options = spec[1] if len(spec) > 1 and isinstance(spec[1], dict) else {}
    if options.get("forceInput"):
        return False
    return isinstance(kind, list) or kind in WIDGET_TYPES


def _has_control_value(name: str, spec) -> bool:
    options = spec[1] if len(spec) > 1 and isinstance(spec[1], dict) else {}
    if "control_after_generate" in options:
        return bool(options["control_after_generate"])
    return spec[0] == "INT" and name in SEED_NAMES


def _ordered_inputs(info: dict) -> list[tuple[str, list]]:
    specs = {**info["input"].get("required", {}), **info["input"].get("optional", {})}
    order = info.get("input_order") or {}
    names = list(order.get("required", [])) + list(order.get("optional", [])) if order else list(specs)
    return [(name, specs[name]) for name in names if name in specs]


def ui_to_api(workflow: dict, object_info: dict) -> dict:
    """Convert a UI-format workflow to an API-format prompt using the server's node schemas."""
    links = {link[0]: link for link in workflow.get("links", [])}
    nodes = {node["id"]: node for node in workflow["nodes"]}

    def source(link_id):
        link = links.get(link_id)
        if link is None:
            raise WorkflowError(f"link {link_id} is referenced but not defined")
        from_node = nodes.get(link[1])
        if from_node is None:
            raise WorkflowError(f"link {link_id} starts at missing node {link[1]}")
        if from_node["type"] == "Reroute":
            upstream = from_node["inputs"][0].get("link")
            return source(upstream)
        return [str(link[1]), link[2]]

    prompt = {}
    for node in workflow["nodes"]:
        if node["type"] in UI_ONLY_TYPES or node.get("mode", 0) in (MUTED, BYPASSED):
            continue
        info = object_info.get(node["type"])
        if info is None:
            raise WorkflowError(f"node {node['id']} has type {node['type']!r}, which this server does not know")
        linked = {i["name"]: i["link"] for i in node.get("inputs", []) if i.get("link") is not None}
        values = list(node.get("widgets_values") or [])
        position = 0
        inputs = {}
        for name, spec in _ordered_inputs(info):
            if _is_widget(spec):
                if position < len(values):
                    inputs[name] = values[position]
                position += 1
                if _has_control_value(name, spec):
                    position += 1
            if name in linked:
                inputs[name] = source(linked[name])
        prompt[str(node["id"])] = {"class_type": node["type"], "inputs": inputs,
                                   "_meta": {"title": node.get("title") or node["type"]}}
    return prompt


def _depths(prompt: dict) -> dict[str, int]:
    depth: dict[str, int] = {}

    def visit(node_id: str, trail: tuple = ()) -> int:
        if node_id in depth:
            return depth[node_id]
        if node_id in trail:
            raise WorkflowError(f"cycle through node {node_id}")
        parents = [v[0] for v in prompt[node_id]["inputs"].values() if isinstance(v, list)]
        depth[node_id] = 1 + max((visit(p, trail + (node_id,)) for p in parents), default=-1)
        return depth[node_id]

    for node_id in prompt:
        visit(node_id)
    return depth


def api_to_ui(prompt: dict, object_info: dict, titles: dict[str, str] | None = None) -> dict:
    """Build a UI-format workflow (what the frontend saves) from an API prompt.

    Used to generate example_workflows/ from readable API graphs; ui_to_api inverts it exactly.
    Nodes are laid out in columns by depth so the graph opens readable in the editor.
    """
    titles = titles or {}
    depth = _depths(prompt)
    rows: dict[int, int] = {}
    links, ui_nodes = [], []
    outputs_of: dict[str, list[dict]] = {}
    for node_id, node in prompt.items():
        info = object_info[node["class_type"]]
        outputs_of[node_id] = [
            {"name": name, "type": kind, "links": [], "slot_index": slot}
            for slot, (name, kind) in enumerate(zip(info["output_name"], info["output"], strict=True))
        ]
    for order, (node_id, node) in enumerate(sorted(prompt.items(), key=lambda kv: (depth[kv[0]], int(kv[0])))):
        info = object_info[node["class_type"]]
        widgets, inputs = [], []
        for name, spec in _ordered_inputs(info):
            value = node["inputs"].get(name)
            if isinstance(value, list):
                link_id = len(links) + 1
                from_id, from_slot = value
                kind = object_info[prompt[from_id]["class_type"]]["output"][from_slot]
                links.append([link_id, int(from_id), from_slot, int(node_id), len(inputs), kind])
                outputs_of[from_id][from_slot]["links"].append(link_id)
                entry = {"name": name, "type": kind, "link": link_id}
                if _is_widget(spec):
                    entry["widget"] = {"name": name}
                    widgets.append(_default(spec))
                    if _has_control_value(name, spec):
                        widgets.append("fixed")
                inputs.append(entry)
            elif _is_widget(spec):
                widgets.append(_default(spec) if value is None else value)
                if _has_control_value(name, spec):
                    widgets.append("fixed")
        column = depth[node_id]
        row = rows.get(column, 0)
        rows[column] = row + 1
        ui_nodes.append({
            "id": int(node_id), "type": node["class_type"], "pos": [40 + 380 * column, 40 + 420 * row],
            "size": [320, 60 + 26 * (len(widgets) + max(len(inputs), len(info["output"])))],
            "flags": {}, "order": order, "mode": 0, "inputs": inputs, "outputs": outputs_of[node_id],
            "properties": {"Node name for S&R": node["class_type"]}, "widgets_values": widgets,
            **({"title": titles[node_id]} if node_id in titles else {}),
        })
    return {
        "last_node_id": max(int(k) for k in prompt), "last_link_id": len(links),
        "nodes": sorted(ui_nodes, key=lambda n: n["id"]), "links": links, "groups": [],
        "config": {}, "extra": {"ds": {"scale": 0.8, "offset": [0, 0]}}, "version": 0.4,
    }


def _default(spec):
    options = spec[1] if len(spec) > 1 and isinstance(spec[1], dict) else {}
    if "default" in options:
        return options["default"]
    if isinstance(spec[0], list) and spec[0]:
        return spec[0][0]
    if spec[0] == "COMBO" and options.get("options"):
        return options["options"][0]
    return None


def strip_meta(prompt: dict) -> dict:
    """The prompt without the cosmetic `_meta` entries (for comparisons)."""
    return {k: {"class_type": v["class_type"], "inputs": v["inputs"]} for k, v in prompt.items()}
