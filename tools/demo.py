"""`make demo`: start the real ComfyUI server, queue the pack's example workflows through its HTTP
API, follow them over the websocket with a progress bar, and write what they produce to demo_output/.
"""
from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from comfy_server import ROOT, ComfyServer  # noqa: E402
from demo_images import decode_png, labelled_grid  # noqa: E402
from workflow_format import load, ui_to_api  # noqa: E402

OUTPUT = ROOT / "demo_output"
EXAMPLES = ROOT / "example_workflows"


@dataclass
class Job:
    """One prompt: a graph (converted from an example workflow) and a label for its images."""
    name: str
    graph: dict
    label: str
    images: list = field(default_factory=list)
    seconds: float = 0.0


class ProgressBar:
    """`[prompt 2/5] name  |#######-----| step 7/20` on one terminal line."""

    def __init__(self, total_prompts: int, stream=sys.stderr):
        self.total = total_prompts
        self.stream = stream
        self.index = 0
        self.name = ""

    def start(self, index: int, name: str) -> None:
        self.index, self.name = index, name
        self._draw(0, 1)

    def event(self, event: dict) -> None:
        if event.get("type") == "progress":
            self._draw(event["data"]["value"], event["data"]["max"])

    def _draw(self, value: int, maximum: int) -> None:
        width = 30
        filled = int(width * value / max(maximum, 1))
        self.stream.write(f"\r[prompt {self.index}/{self.total}] {self.name:<34.34} "
                          f"|{'#' * filled}{'-' * (width - filled)}| step {value}/{maximum}   ")
        self.stream.flush()

    def done(self, seconds: float) -> None:
        self.stream.write(f" {seconds:6.1f}s\n")
        self.stream.flush()


def example_graph(name: str, object_info: dict) -> dict:
    """An example workflow exactly as a user would load it, converted to the API format."""
    return ui_to_api(load(EXAMPLES / f"{name}.json"), object_info)


def build_jobs(object_info: dict) -> list[Job]:
    spacing = example_graph("spacing_trailing_reference", object_info)
    return [Job("spacing_trailing_reference", spacing, "reference model, trailing spacing, euler, 20 steps")]


def run_jobs(client, jobs: list[Job]) -> None:
    bar = ProgressBar(len(jobs))
    for index, job in enumerate(jobs, start=1):
        bar.start(index, job.name)
        started = time.monotonic()
        entry = client.run(job.graph, timeout=900, on_progress=bar.event)
        job.seconds = time.monotonic() - started
        job.images = [decode_png(client.view(image)) for _, image in client.output_images(entry)]
        bar.done(job.seconds)


def write_outputs(jobs: list[Job], output: Path) -> list[Path]:
    output.mkdir(parents=True, exist_ok=True)
    written = []
    for job in jobs:
        path = output / f"{job.name}.png"
        labelled_grid([(job.label, job.images)], columns=8, scale=2).save(path)
        written.append(path)
    summary = {job.name: {"images": len(job.images), "seconds": round(job.seconds, 2)} for job in jobs}
    (output / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    written.append(output / "summary.json")
    return written


def main() -> int:
    print("zsnr demo: starting the real ComfyUI server on 127.0.0.1 …", flush=True)
    with ComfyServer(ROOT / ".demo_host") as server:
        print(f"server up at {server.url} (log: {server.log_path})", flush=True)
        client = server.client()
        jobs = build_jobs(client.object_info())
        run_jobs(client, jobs)
    for path in write_outputs(jobs, OUTPUT):
        print(f"wrote {path}")
    print(f"demo output in {OUTPUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
