"""Write subgraphs/*.json: the pack's one-node recipes as subgraph blueprints.

The host serves <custom_nodes>/<pack>/subgraphs/*.json at GET /global_subgraphs (id → name = the
file name, source custom_node) and GET /global_subgraphs/{id} (the file text as `data`), in
ComfyUI's app/subgraph_manager.py; the frontend registers each as a node named after the file
(stores/subgraphStore.ts in Comfy-Org/ComfyUI_frontend: display_name = the file name, category
"Subgraph Blueprints/<definitions.subgraphs[0].category>", description from the same definition).

A blueprint is an ordinary workflow (version 0.4) whose only node has the subgraph's id as its type;
definitions.subgraphs[0] holds the inner graph with the input node (id -10) and output node (id -20)
and links as objects, as the frontend serialises a subgraph (ExportedSubgraph in its litegraph
types; the host's own blueprints/*.json are written that way). The widgets a user changes are
shown on the node through its `proxyWidgets` property, [inner node id, widget name] pairs.

The inner nodes come from readable API graphs through workflow_format.api_to_ui, with the
subgraph's inputs standing in as a node of their own that is then replaced by the input node.
Needs a live server's node schemas, like tools/build_example_workflows.py, and is built on the same
host: `python tools/bootstrap.py run tools/build_blueprints.py`.
"""
from __future__ import annotations

import json
import sys
import uuid

from build_example_workflows import BUILT_ON_COMFYUI
from comfy_server import ROOT, ComfyServer
from workflow_format import api_to_ui

OUT = ROOT / "subgraphs"
INPUT_NODE, OUTPUT_NODE = -10, -20  # the frontend's ids of a subgraph's input and output nodes
SUBGRAPH_INPUTS = "__subgraph_inputs__"  # stand-in type for the subgraph's inputs during conversion
CATEGORY = "zsnr"
FIX_CHECKPOINT = "Fix a v-pred or ZTSNR checkpoint (zsnr)"
FEW_STEP_SAMPLER = "Few-step sampler for ZTSNR models (zsnr)"
IN = "0"  # the stand-in node's id in the API graphs below
# Inner node ids start here (per blueprint): the frontend renumbers inner nodes whose ids collide
# with the graph's own (1.58.1: subgraphDeduplication.ts), and a renumbered node loses the widgets
# promoted from it (its proxyWidgets entry then names another node), so they stay clear of a
# graph's usual ids, as the host's own blueprints/*.json do.
ID_BASE = {FIX_CHECKPOINT: 7100, FEW_STEP_SAMPLER: 7200}


def fix_checkpoint_graph() -> dict:
    """MODEL in → ZeroTerminalSNR → VPredictionAdapter → ZSNRRescaleCFG → ZSNRSamplingResolution → MODEL
    (README "Which node for my checkpoint": the NoobAI-XL / SD 2.x-v row)."""
    return {
        "1": {"class_type": "ZeroTerminalSNR", "inputs": {"model": [IN, 0], "terminal": "exact"}},
        "2": {"class_type": "VPredictionAdapter", "inputs": {"model": ["1", 0], "prediction": "v_prediction"}},
        "3": {"class_type": "ZSNRRescaleCFG", "inputs": {
            "model": ["2", 0], "multiplier": 0.7, "space": "auto", "terminal_step": "guided",
            "sigma_start": 1e9, "sigma_end": 0.0}},
        "4": {"class_type": "ZSNRSamplingResolution", "inputs": {"model": ["3", 0], "width": 1024, "height": 1024}},
    }


def few_step_sampler_graph() -> dict:
    """README's recommended few-step setup as a sampler: logsnr_resolution spacing for the latent's
    own size (TimestepSpacingScheduler's `latent` input), dpmpp_2m_sde, 10 steps, CFG guidance."""
    return {
        "1": {"class_type": "TimestepSpacingScheduler", "inputs": {
            "model": [IN, 0], "spacing": "logsnr_resolution", "steps": 10, "denoise": 1.0, "steps_offset": 0,
            "latent": [IN, 3]}},
        "2": {"class_type": "KSamplerSelect", "inputs": {"sampler_name": "dpmpp_2m_sde"}},
        "3": {"class_type": "RandomNoise", "inputs": {"noise_seed": 0}},
        "4": {"class_type": "CFGGuider", "inputs": {
            "model": [IN, 0], "positive": [IN, 1], "negative": [IN, 2], "cfg": 5.0}},
        "5": {"class_type": "SamplerCustomAdvanced", "inputs": {
            "noise": ["3", 0], "guider": ["4", 0], "sampler": ["2", 0], "sigmas": ["1", 0], "latent_image": [IN, 3]}},
    }


# name → (inner graph, subgraph inputs [(name, type)], output (node id, slot, name, type),
#         promoted widgets [(node id, widget)], description)
BLUEPRINTS = {
    FIX_CHECKPOINT: (fix_checkpoint_graph(), [("model", "MODEL")], ("4", 0, "MODEL", "MODEL"),
                     [("1", "terminal"), ("2", "prediction"), ("3", "multiplier"), ("4", "width"), ("4", "height")],
                     "Model in, model out: exact zero terminal SNR, v prediction, Rescale CFG and the sampling "
                     "size, for v-pred / ZTSNR checkpoints (NoobAI-XL v-pred, SD 2.x-v, zsnr fine-tunes). Set "
                     "width x height to the size you sample; pick logsnr_resolution in the KSampler for few steps."),
    FEW_STEP_SAMPLER: (few_step_sampler_graph(), [("model", "MODEL"), ("positive", "CONDITIONING"),
                                                  ("negative", "CONDITIONING"), ("latent_image", "LATENT")],
                       ("5", 0, "LATENT", "LATENT"),
                       [("3", "noise_seed"), ("1", "steps"), ("4", "cfg"), ("2", "sampler_name"), ("1", "spacing")],
                       "zsnr's recommended few-step sampling: logsnr_resolution spacing for the latent's size, "
                       "dpmpp_2m_sde, 10 steps. Feed it a model patched by Zero Terminal SNR + V-Prediction "
                       "Adapter (or the 'Fix a v-pred or ZTSNR checkpoint' blueprint)."),
}


def _stable_id(*parts: str) -> str:
    """A UUID fixed by the blueprint's name, so a rebuild writes the same file."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, "zsnr-blueprint/" + "/".join(parts)))


def blueprint(name: str, object_info: dict) -> dict:
    graph, inputs, (out_node, out_slot, out_name, out_type), promoted, description = BLUEPRINTS[name]
    renumber = {key: str(ID_BASE[name] + int(key)) for key in graph}
    graph = json.loads(json.dumps(graph))
    for node in graph.values():
        node["inputs"] = {k: [renumber.get(v[0], v[0]), v[1]] if isinstance(v, list) else v
                          for k, v in node["inputs"].items()}
    graph = {renumber[key]: node for key, node in graph.items()}
    out_node = renumber[out_node]
    promoted = [(renumber[node_id], widget) for node_id, widget in promoted]
    stand_in = {"input": {"required": {}}, "output": [t for _, t in inputs], "output_name": [n for n, _ in inputs]}
    ui = api_to_ui({IN: {"class_type": SUBGRAPH_INPUTS, "inputs": {}}, **graph},
                   {**object_info, SUBGRAPH_INPUTS: stand_in})
    nodes = [node for node in ui["nodes"] if node["type"] != SUBGRAPH_INPUTS]
    for node in nodes:  # api_to_ui put the stand-in in column 0
        node["pos"][0] -= 380
        node.pop("order")
    links, input_links = [], {index: [] for index in range(len(inputs))}
    for link_id, origin, slot, target, target_slot, kind in ui["links"]:
        if origin == int(IN):
            origin = INPUT_NODE
            input_links[slot].append(link_id)
        links.append({"id": link_id, "origin_id": origin, "origin_slot": slot, "target_id": target,
                      "target_slot": target_slot, "type": kind})
    out_link = len(links) + 1
    links.append({"id": out_link, "origin_id": int(out_node), "origin_slot": out_slot, "target_id": OUTPUT_NODE,
                  "target_slot": 0, "type": out_type})
    next(n for n in nodes if n["id"] == int(out_node))["outputs"][out_slot]["links"].append(out_link)
    for order, node in enumerate(nodes):
        node["order"] = order
    right = max(node["pos"][0] for node in nodes) + 380
    subgraph_id = _stable_id(name)
    definition = {
        "id": subgraph_id, "version": 1,
        "state": {"lastGroupId": 0, "lastNodeId": max(n["id"] for n in nodes), "lastLinkId": out_link,
                  "lastRerouteId": 0},
        "revision": 0, "config": {}, "name": name,
        "inputNode": {"id": INPUT_NODE, "bounding": [-180, 40, 120, 40 + 20 * len(inputs)]},
        "outputNode": {"id": OUTPUT_NODE, "bounding": [right, 40, 120, 60]},
        "inputs": [{"id": _stable_id(name, "in", n), "name": n, "type": t, "linkIds": input_links[i],
                    "pos": [-80, 60 + 20 * i]} for i, (n, t) in enumerate(inputs)],
        "outputs": [{"id": _stable_id(name, "out", out_name), "name": out_name, "type": out_type,
                     "linkIds": [out_link], "pos": [right + 20, 60]}],
        "widgets": [], "nodes": nodes, "groups": [], "links": links, "extra": {},
        "category": CATEGORY, "description": description,
    }
    return {
        "revision": 0, "last_node_id": 1, "last_link_id": 0,
        "nodes": [{
            "id": 1, "type": subgraph_id, "pos": [0, 0], "size": [320, 80 + 26 * (len(inputs) + len(promoted))],
            "flags": {}, "order": 0, "mode": 0,
            "inputs": [{"name": n, "type": t, "link": None} for n, t in inputs],
            "outputs": [{"name": out_name, "type": out_type, "links": []}],
            "properties": {"proxyWidgets": [[node_id, widget] for node_id, widget in promoted]},
            "widgets_values": [], "title": name,
        }],
        "links": [], "version": 0.4, "definitions": {"subgraphs": [definition]},
        "extra": {"BlueprintDescription": description},
    }


def render_all(object_info: dict) -> dict[str, str]:
    """File name → JSON text for every blueprint (deterministic, so a test can compare)."""
    return {f"{name}.json": json.dumps(blueprint(name, object_info), indent=2) + "\n" for name in BLUEPRINTS}


def main() -> None:
    with ComfyServer(ROOT / "test_output" / "hosts" / "build_blueprints") as server:
        client = server.client()
        version = client.comfyui_version()
        if version != BUILT_ON_COMFYUI:
            sys.exit(f"the blueprints are built on ComfyUI {BUILT_ON_COMFYUI}, this host is {version}")
        OUT.mkdir(exist_ok=True)
        rendered = render_all(client.object_info())
        for stale in sorted(p for p in OUT.glob("*.json") if p.name not in rendered):
            stale.unlink()  # a renamed blueprint: the host would still list the old file
            print(f"removed {stale}")
        for name, text in rendered.items():
            (OUT / name).write_text(text)
            print(f"wrote {OUT / name}")


if __name__ == "__main__":
    main()
