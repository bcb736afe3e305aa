"""Write example_workflows/*.json (UI format) from tools/example_graphs.py.

Needs the node schemas of a live server: `python tools/bootstrap.py run tools/build_example_workflows.py`.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from comfy_server import ROOT, ComfyServer  # noqa: E402
from example_graphs import EXAMPLES  # noqa: E402
from workflow_format import api_to_ui  # noqa: E402

OUT = ROOT / "example_workflows"


def render_all(object_info: dict) -> dict[str, str]:
    """File name → JSON text for every example (deterministic, so a test can compare)."""
    return {
        f"{name}.json": json.dumps(api_to_ui(graph, object_info, titles), indent=2) + "\n"
        for name, (graph, titles) in EXAMPLES.items()
    }


def main() -> None:
    with ComfyServer(ROOT / "test_output" / "hosts" / "build_workflows") as server:
        rendered = render_all(server.client().object_info())
    OUT.mkdir(exist_ok=True)
    for name, text in rendered.items():
        (OUT / name).write_text(text)
        print(f"wrote {OUT / name}")


if __name__ == "__main__":
    main()
