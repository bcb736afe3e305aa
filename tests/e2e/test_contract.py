"""The workflow contract: saved workflows that use zsnr nodes keep loading and running.

tests/contract/object_info_snapshot.json records, from a live /object_info, every zsnr node's id,
its inputs (name, type, combo options, default, required or optional, widget order) and its
outputs (type per slot). The test fails when a release would break a saved workflow:

- a node disappears;
- an input is removed, renamed or retyped, or an optional input becomes required;
- a combo option disappears (old workflows hold it as a value);
- a default changes type (an INT default becoming FLOAT);
- an output slot is removed or retyped (links address outputs by slot index);
- the widgets of the snapshot stop being the first widgets in their order: the UI format stores
  widget values by position (widgets_values), so a new widget may only come after them;
- a new *required* input appears on an existing node: saved API graphs do not have it.

Only what the pack controls is compared. A combo whose options are the host's own list (its
samplers or schedulers: every host release may add or drop some) is recorded as
`"options_from_host": "KSampler.sampler_name"` (or `.scheduler`) instead of option by option, so a
host with other samplers neither breaks nor changes the snapshot; our own combos keep their options.
Host nodes are not in the snapshot at all.

Adding is fine: new nodes, new optional inputs after the existing widgets, new combo options, new
output slots after the existing ones. After such an addition, regenerate the snapshot with
`python tools/bootstrap.py run tests/e2e/test_contract.py --update` (the bootstrap venv, with
tools/ on PYTHONPATH) and commit it.

The `<Id>_v2` policy: a node that must change incompatibly is not changed in place. The new
behaviour ships as a new node `<Id>_v2` (display name "… v2 (zsnr)"); the old `<Id>` stays
registered with its old schema and behaviour (marked deprecated=True so the node search hides it)
and keeps its snapshot entry here, so every workflow saved with it still loads and runs.

The example workflows are part of the contract too: every example_workflows/*.json is converted
with ui_to_api and run (smaller batches and fewer steps) and must succeed; an example that needs
the user's own files must fail validation only for those files.
"""
from __future__ import annotations

import json
import sys
import warnings
from pathlib import Path

# Script mode (the update) runs through the bootstrap, which puts tools/ on PYTHONPATH as pytest's
# `pythonpath` does (tests/pytest.ini): the same imports either way.
import pytest
from build_example_workflows import OUT as EXAMPLES_DIR
from example_graphs import NEEDS_USER_FILES
from workflow_format import _is_widget, load, ui_to_api

TESTS = Path(__file__).resolve().parent.parent
SNAPSHOT = TESTS / "contract" / "object_info_snapshot.json"
UPDATE_COMMAND = "python tools/bootstrap.py run tests/e2e/test_contract.py --update"
PACK_MODULE = "custom_nodes.zsnr"


pytestmark = pytest.mark.e2e
SHRUNK = {"batch_size": 2, "steps": 3}  # keeps every example quick; both are valid for every node using them


def is_pack_node(info: dict) -> bool:
    return info.get("python_module", "").split(".")[:2] == PACK_MODULE.split(".")


# The host's own option lists, by where /object_info shows them (KSampler's scheduler list also
# holds the spacings this pack registers, nodes/schedulers.py, exactly as a node of ours using
# comfy.samplers.SCHEDULER_NAMES would see it).
HOST_LISTS = {"KSampler.sampler_name": ("KSampler", "sampler_name"), "KSampler.scheduler": ("KSampler", "scheduler")}


def combo_choices(spec) -> list | None:
    """A combo input's options in either schema form ([[...]] or ["COMBO", {"options": [...]}])."""
    options = spec[1] if len(spec) > 1 and isinstance(spec[1], dict) else {}
    choices = spec[0] if isinstance(spec[0], list) else options.get("options")
    return None if choices is None else list(choices)


def host_lists(object_info: dict) -> dict[str, list]:
    """HOST_LISTS as this server lists them (label -> options)."""
    found = {}
    for label, (node, name) in HOST_LISTS.items():
        spec = object_info.get(node, {}).get("input", {}).get("required", {}).get(name)
        if spec is not None and combo_choices(spec) is not None:
            found[label] = combo_choices(spec)
    return found


def node_contract(info: dict, host_options: dict[str, list] | None = None) -> dict:
    """What a saved workflow relies on, from one /object_info entry (host_options: host_lists())."""
    host_owned = {frozenset(choices): label for label, choices in (host_options or {}).items()}
    inputs, widgets = {}, []
    order = info.get("input_order", {})
    for category in ("required", "optional"):
        for name in order.get(category, info["input"].get(category, {})):
            spec = info["input"][category][name]
            kind = spec[0]
            options = spec[1] if len(spec) > 1 and isinstance(spec[1], dict) else {}
            entry = {"type": "COMBO" if isinstance(kind, list) else kind, "required": category == "required"}
            choices = combo_choices(spec)
            if choices is not None and frozenset(choices) in host_owned:
                entry["options_from_host"] = host_owned[frozenset(choices)]
            elif choices is not None:
                entry["options"] = choices
            if "default" in options:
                entry["default"] = options["default"]
            inputs[name] = entry
            if _is_widget(spec):
                widgets.append(name)
    outputs = [{"name": name, "type": kind} for name, kind in zip(info["output_name"], info["output"], strict=True)]
    return {"inputs": inputs, "widget_order": widgets, "outputs": outputs,
            "output_node": bool(info.get("output_node"))}


def contract_from_object_info(object_info: dict) -> dict:
    lists = host_lists(object_info)
    return {name: node_contract(info, lists) for name, info in sorted(object_info.items()) if is_pack_node(info)}


def contract_breaks(snapshot: dict, live: dict) -> list[str]:
    """Every way `live` breaks a workflow saved against `snapshot` (empty when compatible)."""
    problems = []
    for node, old in snapshot.items():
        new = live.get(node)
        if new is None:
            problems.append(f"{node}: node disappeared (keep it registered; see the <Id>_v2 policy)")
            continue
        for name, was in old["inputs"].items():
            now = new["inputs"].get(name)
            where = f"{node}.{name}"
            if now is None:
                problems.append(f"{where}: input removed or renamed")
                continue
            if now["type"] != was["type"]:
                problems.append(f"{where}: type {was['type']} became {now['type']}")
            if now["required"] and not was["required"]:
                problems.append(f"{where}: optional input became required")
            if "options_from_host" in was:
                if now.get("options_from_host") != was["options_from_host"]:
                    problems.append(f"{where}: no longer offers the host's {was['options_from_host']} list")
            else:
                lost = [option for option in was.get("options", []) if option not in now.get("options", [])]
                if lost:
                    problems.append(f"{where}: options {lost} disappeared")
            if "default" in was and type(now.get("default")) is not type(was["default"]):
                problems.append(f"{where}: default {was['default']!r} became {now.get('default')!r} (type changed)")
        for name, now in new["inputs"].items():
            if name not in old["inputs"] and now["required"]:
                problems.append(f"{node}.{name}: new required input (saved graphs lack it; make it optional)")
        if new["widget_order"][:len(old["widget_order"])] != old["widget_order"]:
            problems.append(f"{node}: widget order {old['widget_order']} became {new['widget_order']} "
                            "(UI workflows store widget values by position; add new widgets last)")
        for slot, was in enumerate(old["outputs"]):
            if slot >= len(new["outputs"]) or new["outputs"][slot]["type"] != was["type"]:
                problems.append(f"{node}: output slot {slot} ({was['type']}) removed or retyped")
    return problems


def read_snapshot() -> dict:
    return json.loads(SNAPSHOT.read_text())["nodes"]


def write_snapshot(object_info: dict) -> dict:
    nodes = contract_from_object_info(object_info)
    SNAPSHOT.parent.mkdir(parents=True, exist_ok=True)
    SNAPSHOT.write_text(json.dumps({
        "about": "The zsnr workflow contract (tests/e2e/test_contract.py). Generated from a live "
                 f"/object_info; regenerate after compatible additions with: {UPDATE_COMMAND}",
        "nodes": nodes}, indent=2, ensure_ascii=False) + "\n")
    return nodes


def test_contract_checker_catches_every_breaking_change():
    """The checker itself: each kind of break is reported, and additions are not."""
    old = {"N": {"inputs": {"model": {"type": "MODEL", "required": True},
                            "mode": {"type": "COMBO", "required": True, "options": ["a", "b"], "default": "a"},
                            "steps": {"type": "INT", "required": True, "default": 20},
                            "extra": {"type": "FLOAT", "required": False, "default": 0.5}},
                 "widget_order": ["mode", "steps", "extra"], "outputs": [{"name": "MODEL", "type": "MODEL"}],
                 "output_node": False}}
    added = json.loads(json.dumps(old))
    added["N"]["inputs"]["mode"]["options"].append("c")
    added["N"]["inputs"]["more"] = {"type": "INT", "required": False, "default": 1}
    added["N"]["widget_order"].append("more")
    added["N"]["outputs"].append({"name": "IMAGE", "type": "IMAGE"})
    added["M"] = added["N"]
    assert contract_breaks(old, added) == []

    def broken(change) -> list[str]:
        new = json.loads(json.dumps(old))
        change(new["N"])
        return contract_breaks(old, new)

    assert broken(lambda n: n["inputs"].pop("steps"))
    assert broken(lambda n: n["inputs"]["steps"].update(type="FLOAT"))
    assert broken(lambda n: n["inputs"]["mode"]["options"].remove("b"))
    assert broken(lambda n: n["inputs"]["steps"].update(default=20.0))
    assert broken(lambda n: n["inputs"]["extra"].update(required=True))
    assert broken(lambda n: n["inputs"].update(new={"type": "INT", "required": True}))
    assert broken(lambda n: n.update(widget_order=["steps", "mode", "extra"]))
    assert broken(lambda n: n["outputs"][0].update(type="LATENT"))
    assert contract_breaks(old, {})

    with_host_list = json.loads(json.dumps(old))
    with_host_list["N"]["inputs"]["sampler"] = {"type": "COMBO", "required": False, "default": "euler",
                                                "options_from_host": "KSampler.sampler_name"}
    assert contract_breaks(with_host_list, with_host_list) == []
    own_list = json.loads(json.dumps(with_host_list))
    own_list["N"]["inputs"]["sampler"] = {"type": "COMBO", "required": False, "default": "euler", "options": ["euler"]}
    assert contract_breaks(with_host_list, own_list), "a combo that stops offering the host's list must be caught"


def test_host_owned_lists_are_recorded_by_reference(object_info):
    """On the live schemas: a combo listing the host's samplers or schedulers is recorded as the
    host's list, so another host's list (a sampler more or less) changes nothing in the contract,
    while a lost option of our own combos still does."""
    lists = host_lists(object_info)
    assert set(lists) == set(HOST_LISTS), f"the host lists moved: {sorted(lists)}"
    assert "euler" in lists["KSampler.sampler_name"] and "trailing" in lists["KSampler.scheduler"]
    ksampler = node_contract(object_info["KSampler"], lists)
    assert ksampler["inputs"]["sampler_name"]["options_from_host"] == "KSampler.sampler_name"
    assert ksampler["inputs"]["scheduler"]["options_from_host"] == "KSampler.scheduler"
    assert "options" not in ksampler["inputs"]["sampler_name"]

    other_host = json.loads(json.dumps(object_info))  # the same schemas with one sampler fewer
    spec = other_host["KSampler"]["input"]["required"]["sampler_name"]
    fewer = combo_choices(spec)[:-1]
    spec[:] = [fewer, *spec[1:]] if isinstance(spec[0], list) else [spec[0], {**spec[1], "options": fewer}]
    other = node_contract(other_host["KSampler"], host_lists(other_host))
    assert contract_breaks({"KSampler": ksampler}, {"KSampler": other}) == []

    ours = contract_from_object_info(object_info)
    trimmed = json.loads(json.dumps(ours))
    trimmed["ZeroTerminalSNR"]["inputs"]["terminal"]["options"].remove("exact")
    assert contract_breaks(ours, trimmed), "a lost option of our own combo must still be caught"


def test_live_nodes_keep_the_committed_contract(object_info):
    assert SNAPSHOT.is_file(), f"{SNAPSHOT} missing: generate it with {UPDATE_COMMAND}"
    snapshot, live = read_snapshot(), contract_from_object_info(object_info)
    assert snapshot, "the snapshot lists no zsnr node"
    problems = contract_breaks(snapshot, live)
    assert not problems, ("changes that break saved workflows:\n  " + "\n  ".join(problems) +
                          "\nKeep the old node working (the <Id>_v2 policy in this module's docstring); "
                          f"regenerate the snapshot with {UPDATE_COMMAND} only for compatible additions.")
    unrecorded = sorted(set(live) - set(snapshot)) + sorted(
        f"{node}.{name}" for node in snapshot if node in live for name in live[node]["inputs"]
        if name not in snapshot[node]["inputs"])
    if unrecorded:
        warnings.warn(f"not yet in the contract snapshot: {unrecorded}; run {UPDATE_COMMAND}", stacklevel=1)


def shrink(graph: dict) -> dict:
    for node in graph.values():
        for name, limit in SHRUNK.items():
            value = node["inputs"].get(name)
            if isinstance(value, int) and not isinstance(value, bool) and value > limit:
                node["inputs"][name] = limit
    return graph


EXAMPLE_FILES = sorted(path.stem for path in EXAMPLES_DIR.glob("*.json"))


@pytest.mark.parametrize("name", EXAMPLE_FILES)
def test_example_workflow_runs(client, object_info, name):
    graph = shrink(ui_to_api(load(EXAMPLES_DIR / f"{name}.json"), object_info))
    if name in NEEDS_USER_FILES:
        status, body = client.post_json("/prompt", {"prompt": graph, "client_id": client.client_id})
        assert status == 400, f"{name} was accepted, yet the test server has none of the user's files"
        errors = [(node_id, error) for node_id, entry in body["node_errors"].items() for error in entry["errors"]]
        missing_file = [(node_id, error) for node_id, error in errors if error["type"] == "value_not_in_list"
                        and graph[node_id]["class_type"].endswith(("Loader", "LoaderSimple"))]
        assert errors and missing_file == errors, f"{name}: errors beyond the user's missing files: {errors}"
        pytest.skip(f"{name} {NEEDS_USER_FILES[name]}; every other node validated")
    entry = client.run(graph, timeout=300)
    assert client.output_images(entry), f"{name} produced no image"


def main() -> None:
    from comfy_server import ROOT, ComfyServer

    with ComfyServer(ROOT / "test_output" / "hosts" / "contract") as server:
        nodes = write_snapshot(server.client().object_info())
    print(f"wrote {SNAPSHOT} ({len(nodes)} nodes: {', '.join(nodes)})")


if __name__ == "__main__":
    if sys.argv[1:] != ["--update"]:
        sys.exit(f"usage: {UPDATE_COMMAND}")
    main()
