"""Write example_workflows/*.json (UI format) from tools/example_graphs.py.

Needs the node schemas of a live server: `python tools/bootstrap.py run tools/build_example_workflows.py`.
The files hold what that server's /object_info says about the host's own nodes too (e.g. the output
slots of SaveImage, which ComfyUI 0.33.0 lists and 0.3.75 does not), so they are built on one host,
BUILT_ON_COMFYUI (the embedded one, tools/bootstrap.py), and the staleness test
(tests/e2e/test_server_foundation.py) compares them only there.
"""
from __future__ import annotations

import json
import sys

from comfy_server import ROOT, ComfyServer
from demo_images import decode_png, labelled_grid
from example_graphs import EXAMPLES, NEEDS_USER_FILES, USER_FILE_CARDS
from PIL import Image, ImageDraw
from workflow_format import api_to_ui

OUT = ROOT / "example_workflows"
# The ComfyUI version whose /object_info the committed example_workflows/*.json were generated from.
BUILT_ON_COMFYUI = "0.3.75"


def render_all(object_info: dict) -> dict[str, str]:
    """File name → JSON text for every example (deterministic, so a test can compare)."""
    return {
        f"{name}.json": json.dumps(api_to_ui(graph, object_info, titles), indent=2) + "\n"
        for name, (graph, titles) in EXAMPLES.items()
    }


def thumbnail(client, name: str, graph: dict) -> Image.Image:
    """What the workflow produces (first four images of a small run), or a text card for the
    workflows that need the user's own files."""
    if name in NEEDS_USER_FILES:
        card = Image.new("RGB", (256, 256), (245, 245, 245))
        draw = ImageDraw.Draw(card)
        for i, line in enumerate(USER_FILE_CARDS[name]):
            draw.text((16, 20 + 26 * i), line, fill=(20, 20, 20))
        return card
    small = json.loads(json.dumps(graph))
    for node in small.values():
        if node["class_type"] == "EmptyChromaRadianceLatentImage":
            node["inputs"]["batch_size"] = 4
    entry = client.run(small, timeout=600)
    images = [decode_png(client.view(image)) for _, image in client.output_images(entry)]
    if len(images) == 1:  # a plot
        return Image.fromarray((images[0] * 255).astype("uint8")).resize((256, 256))
    return labelled_grid([("", images[:4])], columns=4, scale=1).resize((256, 80))


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
        for name, text in rendered.items():
            (OUT / name).write_text(text)
            print(f"wrote {OUT / name}")
            stem = name.removesuffix(".json")
            thumbnail(client, stem, EXAMPLES[stem][0]).save(OUT / f"{stem}.png")
            print(f"wrote {OUT / stem}.png")


if __name__ == "__main__":
    main()
