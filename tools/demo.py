"""`make demo`: start the real ComfyUI server, queue the pack's example workflows through its HTTP
API, follow them over the websocket with a progress bar, and write what they produce to demo_output/.

Every figure is computed from the images the server returned (and, for reference, from the
reference model's dataset); nothing is read from stored numbers.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from charts import histogram_chart
from comfy_server import ROOT, ComfyServer
from demo_images import decode_png, labelled_grid, per_image_brightness, to_uint8
from demo_report import figures, markdown_table
from demo_trained_pair import SEEDS as TRAINED_PAIR_SEEDS
from demo_trained_pair import STEPS as TRAINED_PAIR_STEPS
from demo_trained_pair import render_colour_grid, render_trained_pair_grid
from example_graphs import (
    CUSTOM_SAMPLER,
    FLAWED,
    HOST_CLAMP,
    RECOMMENDED,
    RESCALE_CFG,
    SCHEDULE_PLOT,
    ZTSNR_STOCK,
)
from PIL import Image
from pure_core import datasets, metrics
from workflow_format import load, ui_to_api

OUTPUT = ROOT / "demo_output"
EXAMPLES = ROOT / "example_workflows"
MOSAIC_COLUMNS = 8


@dataclass
class Job:
    """One prompt from an example workflow; `outputs` maps a SaveImage node id to a configuration."""
    workflow: str
    outputs: dict[str, str]
    labels: dict[str, str]
    target_subset: str = "all"
    graph: dict = field(default_factory=dict)
    images: dict[str, list] = field(default_factory=dict)
    seconds: float = 0.0


JOBS = [
    Job(FLAWED, {"9": "flawed"},
        {"flawed": "(a) SD schedule, epsilon, leading spacing - the flawed default"}),
    Job(HOST_CLAMP, {"9": "host_zsnr"},
        {"host_zsnr": "(b) host's zsnr option (clamp 4.9e-8) + v + simple"}),
    Job(ZTSNR_STOCK, {"9": "fixed"},
        {"fixed": "(c) zsnr: exact zero terminal SNR + v + trailing"}),
    Job(RECOMMENDED, {"9": "recommended"},
        {"recommended": "(d) zsnr recommended: exact ZTSNR + v + logsnr_uniform, dpmpp_2m_sde, 10 steps"}),
    Job(RESCALE_CFG, {"11": "cfg_plain", "14": "cfg_rescaled"},
        {"cfg_plain": "plain CFG 7.5 (positive dark, negative all)",
         "cfg_rescaled": "RescaleCFG phi 0.7, CFG 7.5"}, target_subset="dark"),
    Job(SCHEDULE_PLOT, {}, {}),
    Job(CUSTOM_SAMPLER, {"11": "spacing_trailing"},
        {"spacing_trailing": "reference model trained zsnr, sampled without the patch (trailing, euler)"}),
]


class ProgressBar:
    """`[prompt 2/5] name  |#######-----| step 7/20` on one terminal line."""

    def __init__(self, total_prompts: int, stream=sys.stderr):
        self.total, self.stream, self.index, self.name = total_prompts, stream, 0, ""

    def start(self, index: int, name: str) -> None:
        self.index, self.name = index, name
        self._draw(0, 1)

    def event(self, event: dict) -> None:
        if event.get("type") == "progress":
            self._draw(event["data"]["value"], event["data"]["max"])

    def _draw(self, value: int, maximum: int) -> None:
        width = 30
        filled = int(width * value / max(maximum, 1))
        self.stream.write(f"\r[prompt {self.index}/{self.total}] {self.name:<26.26} "
                          f"|{'#' * filled}{'-' * (width - filled)}| step {value}/{maximum}   ")
        self.stream.flush()

    def done(self, seconds: float) -> None:
        self.stream.write(f" {seconds:6.1f}s\n")
        self.stream.flush()


def prepare(job: Job, object_info: dict, seeds: int, steps: int | None) -> None:
    """The example workflow exactly as a user loads it, converted to API format, with the demo's
    seed count (batch size) and optionally fewer steps."""
    job.graph = ui_to_api(load(EXAMPLES / f"{job.workflow}.json"), object_info)
    for node in job.graph.values():
        inputs = node["inputs"]
        if node["class_type"] == "EmptyChromaRadianceLatentImage":
            inputs["batch_size"] = seeds
        if steps is not None and "steps" in inputs and not isinstance(inputs["steps"], list):
            inputs["steps"] = steps


def run_jobs(client, jobs: list[Job]) -> None:
    bar = ProgressBar(len(jobs))
    for index, job in enumerate(jobs, start=1):
        bar.start(index, job.workflow)
        started = time.monotonic()
        entry = client.run(job.graph, timeout=1800, on_progress=bar.event)
        job.seconds = time.monotonic() - started
        for node_id, image in client.output_images(entry):
            job.images.setdefault(node_id, []).append(decode_png(client.view(image)))
        bar.done(job.seconds)


def save_mosaic(images: list[np.ndarray], path: Path) -> None:
    """All images of a configuration, tiled without gaps (a test cuts them back out)."""
    height, width = images[0].shape[:2]
    rows = (len(images) + MOSAIC_COLUMNS - 1) // MOSAIC_COLUMNS
    mosaic = np.zeros((rows * height, MOSAIC_COLUMNS * width, 3))
    for i, image in enumerate(images):
        r, c = divmod(i, MOSAIC_COLUMNS)
        mosaic[r * height:(r + 1) * height, c * width:(c + 1) * width] = image
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(to_uint8(mosaic)).save(path)


def write_outputs(jobs: list[Job], output: Path) -> list[Path]:
    data = datasets.render_dataset("brightness_ramp", 64, 64)
    data_brightness = datasets.mean_brightness(data).numpy()
    masks = datasets.subset_masks(data)
    output.mkdir(parents=True, exist_ok=True)
    written, rows, configs = [], {}, {}
    for job in jobs:
        target = float(data_brightness[masks[job.target_subset].numpy()].mean())
        for node_id, config in job.outputs.items():
            images = job.images.get(node_id, [])
            if not images:
                continue
            configs[config] = (job.labels[config], images)
            rows[config] = figures(images, data_brightness, job.seconds, target_mean=target)
            rows[config]["target subset"] = job.target_subset
            save_mosaic(images, output / "samples" / f"{config}.png")
    grid_rows = [configs[c] for c in ("flawed", "host_zsnr", "fixed", "recommended") if c in configs]
    if grid_rows:
        path = output / "flawed_vs_fixed.png"
        labelled_grid(grid_rows, columns=8, scale=2, title="Same seeds, reference model (brightness_ramp, 64x64)").save(path)
        written.append(path)
        series = [("data", data_brightness, (0, 0, 0))]
        colours = {"flawed": (200, 60, 60), "host_zsnr": (230, 160, 30), "fixed": (40, 120, 220),
                   "recommended": (40, 170, 90)}
        series += [(c, per_image_brightness(configs[c][1]), colours[c]) for c in colours if c in configs]
        path = output / "brightness.png"
        histogram_chart(series, title="Per-image mean brightness: data vs samples").save(path)
        written.append(path)
    cfg_rows = [configs[c] for c in ("cfg_plain", "cfg_rescaled") if c in configs]
    if cfg_rows:
        path = output / "rescale_cfg.png"
        labelled_grid(cfg_rows, columns=8, scale=2, title="Classifier-free guidance 7.5 on the 'dark' subset").save(path)
        written.append(path)
    for job in jobs:
        if job.workflow == SCHEDULE_PLOT:
            for images in job.images.values():
                path = output / "schedule.png"
                Image.fromarray(to_uint8(images[0])).save(path)
                written.append(path)
    table = markdown_table(rows)
    legend = [f"- {name}: {metrics.DEFINITIONS[name]}" for name in ("r", "W1", "brightness error", "extreme", "clipped")]
    report = ["# zsnr demo report", "", "Computed from the images the server returned in this run; the columns are "
              "reference/metrics.py's (README, \"Why exact SNR 0: measured\"):", "", *legend, "", table, ""]
    (output / "report.md").write_text("\n".join(report))
    (output / "report.json").write_text(json.dumps({"mosaic_columns": MOSAIC_COLUMNS, "rows": rows}, indent=2) + "\n")
    written += [output / "report.md", output / "report.json"]
    print("\n" + table + "\n")
    return written


def run_demo(output: Path, seeds: int, steps: int | None, base_directory: Path,
             inprocess_base: Path | None = None) -> list[Path]:
    """inprocess_base: the private folder of the in-process host the trained pair is sampled in
    (default base_directory/trained_pair; the tests pass the host tier's, so one process loads the
    pack once)."""
    print("zsnr demo: starting the real ComfyUI server on 127.0.0.1 ...", flush=True)
    with ComfyServer(base_directory) as server:
        print(f"server up at {server.url} (log: {server.log_path})", flush=True)
        client = server.client()
        object_info = client.object_info()
        jobs = [job for job in JOBS if (EXAMPLES / f"{job.workflow}.json").is_file()]
        for job in jobs:
            prepare(job, object_info, seeds, steps)
        run_jobs(client, jobs)
    written = write_outputs(jobs, output)
    # the trained networks (docs/trained_reference_pair.md, docs/trained_colour_networks.md) are sampled in-process: their grids compare
    # six model setups on the same seeds, which no single example workflow holds
    print("zsnr demo: sampling the trained networks in-process ...", flush=True)
    for render in (render_trained_pair_grid, render_colour_grid):
        written.append(render(output, seeds=min(seeds, TRAINED_PAIR_SEEDS), steps=steps or TRAINED_PAIR_STEPS,
                              base_directory=inprocess_base or base_directory / "trained_pair"))
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seeds", type=int, default=64, help="images per configuration (batch size)")
    parser.add_argument("--steps", type=int, default=None, help="override the workflows' step counts")
    parser.add_argument("--output", type=Path, default=OUTPUT)
    args = parser.parse_args(argv)
    for path in run_demo(args.output, args.seeds, args.steps, ROOT / ".demo_host"):
        print(f"wrote {path}")
    print(f"demo output in {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
