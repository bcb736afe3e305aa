"""Write example_workflows/*.json (UI format) and their *.jpg thumbnails from tools/example_graphs.py.

Needs the node schemas of a live server: `python tools/bootstrap.py run tools/build_example_workflows.py`.
The files hold what that server's /object_info says about the host's own nodes too (e.g. the output
slots of SaveImage, which ComfyUI 0.33.0 lists and 0.3.75 does not), so they are built on one host,
BUILT_ON_COMFYUI (the embedded one, tools/bootstrap.py), and the staleness test
(tests/e2e/test_server_foundation.py) compares them only there.

The folder is the pack's template folder: the host lists its *.json at GET /workflow_templates and
serves the folder at /api/workflow_templates/<pack>/ (app/custom_node_manager.py), and the frontend
asks for the card picture at <name>.jpg, the media subtype fixed to jpg for custom-node templates
(workflowTemplatesStore.ts in Comfy-Org/ComfyUI_frontend, 1.32.9 to 1.58.1). Each thumbnail is the
workflow's own result on this host, each workflow opens with a Note (example_graphs.NOTES).
"""
from __future__ import annotations

import json
import sys

from charts import label_font
from comfy_server import ROOT, ComfyServer
from demo_images import decode_png, to_uint8
from example_graphs import EXAMPLES, NEEDS_USER_FILES, NOTES, ZTSNR_STOCK
from PIL import Image, ImageDraw
from workflow_format import api_to_ui

OUT = ROOT / "example_workflows"
# The ComfyUI version whose /object_info the committed example_workflows/*.json were generated from.
BUILT_ON_COMFYUI = "0.3.75"
THUMBNAIL = 512  # the card shows a square picture (CardTop ratio="square" in the template dialog)


def with_note(workflow: dict, text: str) -> dict:
    """The workflow with a Note node above its graph (a frontend-only node: never queued)."""
    node_id = workflow["last_node_id"] + 1
    workflow["nodes"].append({
        "id": node_id, "type": "Note", "pos": [40, -300], "size": [760, 240], "flags": {},
        "order": len(workflow["nodes"]), "mode": 0, "inputs": [], "outputs": [],
        "properties": {}, "widgets_values": [text], "title": "What this shows, what to change",
    })
    workflow["last_node_id"] = node_id
    return workflow


def render_all(object_info: dict) -> dict[str, str]:
    """File name → JSON text for every example (deterministic, so a test can compare)."""
    return {
        f"{name}.json": json.dumps(with_note(api_to_ui(graph, object_info, titles), NOTES[name]), indent=2) + "\n"
        for name, (graph, titles) in EXAMPLES.items()
    }


def _grid(rows: list[tuple[str, list]], caption: str | None = None) -> Image.Image:
    """Square card: up to two labelled rows of two images each, scaled up without smoothing."""
    card = Image.new("RGB", (THUMBNAIL, THUMBNAIL), (255, 255, 255))
    draw = ImageDraw.Draw(card)
    top = 0
    if caption:
        draw.rectangle((0, 0, THUMBNAIL, 40), fill=(40, 40, 48))
        draw.text((12, 10), caption, fill=(255, 255, 255), font=label_font(16))
        top = 44
    cells = [(label, image) for label, images in rows for image in images[:2 if len(rows) > 1 else 4]]
    side = (THUMBNAIL - top - 12) // 2
    left = (THUMBNAIL - 2 * side - 4) // 2
    for index, (label, image) in enumerate(cells[:4]):
        x, y = left + (index % 2) * (side + 4), top + 4 + (index // 2) * (side + 4)
        card.paste(Image.fromarray(to_uint8(image)).resize((side, side), Image.NEAREST), (x, y))
        if label and index % 2 == 0:
            draw.rectangle((x, y, x + 2 * side, y + 26), fill=(0, 0, 0))
            draw.text((x + 8, y + 4), label, fill=(255, 255, 255), font=label_font(16))
    return card


def thumbnail(client, name: str) -> Image.Image:
    """What the workflow produces (the first images of a small run, or its plot). A workflow that
    needs the user's checkpoint shows the same zsnr nodes on the built-in reference model, captioned so."""
    graph = json.loads(json.dumps(EXAMPLES[ZTSNR_STOCK if name in NEEDS_USER_FILES else name][0]))
    for node in graph.values():
        if node["class_type"] == "EmptyChromaRadianceLatentImage":
            node["inputs"]["batch_size"] = 4
    entry = client.run(graph, timeout=600)
    outputs: dict[str, list] = {}
    for node_id, image in client.output_images(entry):
        outputs.setdefault(node_id, []).append(decode_png(client.view(image)))
    ordered = [outputs[node_id] for node_id in sorted(outputs, key=int)]
    if len(ordered) == 1 and len(ordered[0]) == 1:  # a plot: letterboxed into the square
        plot = Image.fromarray(to_uint8(ordered[0][0]))
        plot.thumbnail((THUMBNAIL, THUMBNAIL))
        card = Image.new("RGB", (THUMBNAIL, THUMBNAIL), (255, 255, 255))
        card.paste(plot, (0, (THUMBNAIL - plot.height) // 2))
        return card
    if len(ordered) == 2:  # two outputs side by side on the same seeds (plain vs rescaled CFG)
        return _grid([("plain CFG", ordered[0]), ("Rescale CFG", ordered[1])])
    caption = "needs your checkpoint; shown on the reference model" if name in NEEDS_USER_FILES else None
    return _grid([("", ordered[0])], caption)


def main() -> None:
    with ComfyServer(ROOT / "test_output" / "hosts" / "build_workflows") as server:
        client = server.client()
        version = client.comfyui_version()
        if version != BUILT_ON_COMFYUI:
            # Another host's schemas would rewrite the host-owned parts of every file (and the
            # staleness test, which runs on BUILT_ON_COMFYUI only, would then fail there).
            sys.exit(f"the example workflows are built on ComfyUI {BUILT_ON_COMFYUI}, this host is {version}: "
                     "run without COMFYUI_PATH (the embedded host), or change BUILT_ON_COMFYUI deliberately")
        rendered = render_all(client.object_info())
        OUT.mkdir(exist_ok=True)
        wanted = set(rendered) | {name.replace(".json", ".jpg") for name in rendered}
        for stale in sorted(p for p in OUT.iterdir() if p.suffix in (".json", ".jpg", ".png") and p.name not in wanted):
            stale.unlink()  # a renamed or removed example: the frontend would list it as a template
            print(f"removed {stale}")
        for name, text in rendered.items():
            (OUT / name).write_text(text)
            print(f"wrote {OUT / name}")
            stem = name.removesuffix(".json")
            thumbnail(client, stem).save(OUT / f"{stem}.jpg", quality=90)
            print(f"wrote {OUT / stem}.jpg")


if __name__ == "__main__":
    main()
