"""The pack's one-node recipes (subgraphs/*.json, written by tools/build_blueprints.py).

The host lists them at GET /global_subgraphs and serves each file at /global_subgraphs/{id}
(app/subgraph_manager.py, 0.3.75 and 0.33.0); the frontend turns each into a node named after the
file. In the browser (both renderers) each is found through the node search box, dropped into a
graph on the reference model, one of the widgets it shows set (through the widget's setValue, as
the canvas edits it; the queued prompt must carry the value into the inner node), queued, and
the images come back.
"""
from __future__ import annotations

import io
import json

import pytest
from build_blueprints import BLUEPRINTS, FEW_STEP_SAMPLER, FIX_CHECKPOINT, OUT, render_all
from build_example_workflows import BUILT_ON_COMFYUI
from example_graphs import ztsnr_vpred_trailing_graph
from PIL import Image
from workflow_format import api_to_ui

pytestmark = pytest.mark.e2e
FILES = sorted(OUT.glob("*.json"))
SIZE, BATCH = 32, 2
# what a user types into the node search box to find each (a part of its name)
QUERIES = {FIX_CHECKPOINT: "ZTSNR checkpoint", FEW_STEP_SAMPLER: "Few-step sampler"}


def served(client) -> dict[str, dict]:
    return json.loads(client.request("GET", "/global_subgraphs")[1])


def test_global_subgraphs_lists_every_blueprint_file(client, object_info):
    ours = {entry_id: entry for entry_id, entry in served(client).items()
            if entry["info"].get("node_pack") == "custom_nodes.zsnr"}
    assert sorted(entry["name"] for entry in ours.values()) == sorted(path.stem for path in FILES) == sorted(BLUEPRINTS)
    for entry_id, entry in ours.items():
        assert entry["source"] == "custom_node"
        status, body = client.request("GET", f"/global_subgraphs/{entry_id}")
        assert status == 200
        text = json.loads(body)["data"]
        assert text == (OUT / f"{entry['name']}.json").read_text()
        workflow = json.loads(text)
        (definition,) = workflow["definitions"]["subgraphs"]
        # the frontend's check (SubgraphBlueprint.validateSubgraph): one root node, the subgraph itself
        assert [node["type"] for node in workflow["nodes"]] == [definition["id"]]
        inner = {str(node["id"]): node for node in definition["nodes"]}
        assert all(node["type"] in object_info for node in inner.values())
        for node_id, widget in workflow["nodes"][0]["properties"]["proxyWidgets"]:
            info = object_info[inner[node_id]["type"]]["input"]
            assert widget in {**info["required"], **info.get("optional", {})}, (node_id, widget)


def test_committed_blueprints_are_current(object_info, host_version):
    if host_version != BUILT_ON_COMFYUI:
        pytest.skip(f"subgraphs/ are built on ComfyUI {BUILT_ON_COMFYUI}; this host is {host_version}")
    for name, text in render_all(object_info).items():
        assert (OUT / name).read_text() == text, f"{name} is stale: run tools/build_blueprints.py"


def add_from_search(page, node_search, query: str, title: str) -> str:
    """Type into the node search box, take the first result and drop it on the canvas (newer
    frontends hold the new node at the pointer until a click places it); returns the id of the one
    new node titled `title`, read in the same evaluation that finds it."""
    before = page.evaluate("() => app.graph.nodes.map(n => String(n.id))")
    node_search(query)
    page.keyboard.press("Enter")
    page.wait_for_function("(n) => app.graph.nodes.length > n", arg=len(before), timeout=20_000)
    box = page.locator("#graph-canvas").first.bounding_box()
    page.mouse.move(box["x"] + box["width"] * 0.5, box["y"] + box["height"] * 0.5)
    page.mouse.click(box["x"] + box["width"] * 0.55, box["y"] + box["height"] * 0.55)
    added = page.wait_for_function("""([before, title]) => {
        const found = app.graph.nodes.filter(n => !before.includes(String(n.id)) && n.title === title);
        return found.length === 1 && String(found[0].id);
    }""", arg=[before, title], timeout=20_000)
    return added.json_value()


def connect(page, links: list[tuple]) -> None:
    """(from node, output slot, to node, input name) links; the input's old link is replaced."""
    page.evaluate("""(links) => { for (const [a, slot, b, name] of links) {
        const from = app.graph.getNodeById(a), to = app.graph.getNodeById(b);
        from.connect(slot, to, to.inputs.findIndex(i => i.name === name));
    } app.canvas.setDirty(true, true); }""", links)


def set_promoted(page, node_id: str, widget: str, value) -> None:
    """Edit a widget the blueprint shows on its node (1.32.9 names it '<inner id>: <name>')."""
    page.evaluate("""([id, name, value]) => {
        const node = app.graph.getNodeById(id);
        const w = node.widgets.find(w => w.name === name || w.name.endsWith(': ' + name));
        w.setValue ? w.setValue(value, {e: null, node, canvas: app.canvas}) : (w.value = value);
    }""", [node_id, widget, value])


@pytest.mark.browser
@pytest.mark.parametrize("name", sorted(BLUEPRINTS))
def test_blueprint_from_the_search_box_runs(page, node_search, renderer, object_info, client, name):
    # the paper's fix on the reference model: 1 reference, 2-3 ZTSNR + v, 4 condition, 5 latent,
    # 6 KSampler, 7-8 decode, 9 SaveImage; the blueprint takes the place of nodes 2-3 or of node 6
    graph = ztsnr_vpred_trailing_graph(steps=4, batch=BATCH, size=SIZE, prefix="zsnr_test/blueprint")
    page.evaluate("(w) => app.loadGraphData(w)", api_to_ui(graph, object_info))
    page.evaluate("() => { const ds = app.canvas.ds; ds.scale = 0.5; ds.offset = [40, 40]; app.canvas.setDirty(true, true); }")
    node = add_from_search(page, node_search, QUERIES[name], name)
    assert page.evaluate("(id) => app.graph.getNodeById(id).title", node) == name
    if name == FIX_CHECKPOINT:
        page.evaluate("() => [2, 3].forEach(id => app.graph.remove(app.graph.getNodeById(id)))")
        connect(page, [(1, 0, node, "model"), (node, 0, 6, "model")])
        set_promoted(page, node, "multiplier", 0.5)
        expected = {"ZeroTerminalSNR", "VPredictionAdapter", "ZSNRRescaleCFG", "ZSNRSamplingResolution"}
    else:
        page.evaluate("() => app.graph.remove(app.graph.getNodeById(6))")
        connect(page, [(3, 0, node, "model"), (4, 0, node, "positive"), (4, 0, node, "negative"),
                       (5, 0, node, "latent_image"), (node, 0, 8, "samples")])
        set_promoted(page, node, "steps", 3)
        expected = {"TimestepSpacingScheduler", "KSamplerSelect", "RandomNoise", "CFGGuider", "SamplerCustomAdvanced"}
    # the frontend fills in a blueprint's inner nodes once its definition is in (seen empty on a cold,
    # busy 1.32.9 server): wait for them rather than read the prompt once
    page.wait_for_function("async (id) => Object.keys((await app.graphToPrompt()).output)"
                           ".some(k => k.startsWith(id + ':'))", arg=node, timeout=30_000)
    prompt = page.evaluate("async () => (await app.graphToPrompt()).output")
    inner = {k: v for k, v in prompt.items() if k.startswith(f"{node}:")}
    assert {v["class_type"] for v in inner.values()} == expected
    edited = [v["inputs"] for v in inner.values() if v["class_type"] in ("ZSNRRescaleCFG", "TimestepSpacingScheduler")]
    assert edited == [{**edited[0], **({"multiplier": 0.5} if name == FIX_CHECKPOINT else {"steps": 3})}]
    page.evaluate("""() => { window.zsnrExecuted = [];
        window.comfyAPI.api.api.addEventListener('executed', (e) => window.zsnrExecuted.push(e.detail));
        return app.queuePrompt(0, 1); }""")
    page.wait_for_function("() => window.zsnrExecuted.some(e => String(e.node) === '9')", timeout=180_000)
    (saved,) = [e for e in page.evaluate("() => window.zsnrExecuted") if str(e["node"]) == "9"]
    images = [Image.open(io.BytesIO(client.view(image))) for image in saved["output"]["images"]]
    assert [image.size for image in images] == [(SIZE, SIZE)] * BATCH
    assert page.zsnr_errors == []
