"""The demo's trained-pair grid (docs/trained_reference_pair.md): the flawed-trained and the
fixed-trained network from the same seeds, then the fixed one under strong CFG without and with
rescale (Lin et al. 2023 §3 Fig. 1 and §3.4 Fig. 6), one labelled row each.

The host runs in-process (tools/inprocess_host.py) from a private base directory under the
git-ignored .demo_host/, the samples go through the stock KSampler path (tools/pack_nodes.py),
and the grid is drawn by demo_images.labelled_grid like the demo's other figures.

    render_trained_pair_grid(output_dir) -> output_dir / "trained_pair.png"
"""
from __future__ import annotations

from pathlib import Path

import inprocess_host
import pack_nodes
from comfy_server import ROOT
from demo_images import labelled_grid

SEEDS = 8
STEPS = 25
SCALE = 3  # 32x32 samples drawn at 96x96


def grid_rows(host, seeds: int = SEEDS, steps: int = STEPS) -> list[tuple[str, list]]:
    """(label, decoded images [H, W, 3] in 0..1) per row, the same seeds in every row."""
    trained = host.node["ZSNRTrainedReferenceModel"]
    flawed = trained.execute(recipe="flawed").result[0]
    exact = pack_nodes.zero_snr(host, trained.execute(recipe="fixed").result[0])
    rescaled = host.node["ZSNRRescaleCFG"].execute(model=exact, multiplier=0.7).result[0]
    null, dark, bright = (pack_nodes.condition(host, subset) for subset in ("all", "dark", "bright"))
    runs = [
        ("flawed-trained (SD schedule, eps), leading, unconditional", flawed, "leading", 1.0, null),
        ("fixed-trained (ZTSNR exact, v), trailing, unconditional", exact, "trailing", 1.0, null),
        ("fixed, class dark, CFG 7.5, plain", exact, "trailing", 7.5, dark),
        ("fixed, class dark, CFG 7.5, ZSNRRescaleCFG 0.7", rescaled, "trailing", 7.5, dark),
        ("fixed, class bright, CFG 7.5, plain", exact, "trailing", 7.5, bright),
        ("fixed, class bright, CFG 7.5, ZSNRRescaleCFG 0.7", rescaled, "trailing", 7.5, bright),
    ]
    rows = []
    for label, model, scheduler, cfg, positive in runs:
        samples = pack_nodes.ksample(host, model, "euler", scheduler, steps, seeds, 32, cfg, positive, null)
        images = ((samples.double() + 1) / 2).clamp(0, 1).movedim(1, -1).numpy()  # the pixel-space VAE decode
        rows.append((label, list(images)))
    return rows


def render_trained_pair_grid(output_dir, seeds: int = SEEDS, steps: int = STEPS, base_directory=None) -> Path:
    """Sample the trained pair in-process and write output_dir/trained_pair.png; returns its path.
    base_directory: the in-process host's private folder (default .demo_host/trained_pair)."""
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    host = inprocess_host.load_host(Path(base_directory or ROOT / ".demo_host" / "trained_pair"), quiet=True)
    grid = labelled_grid(grid_rows(host, seeds, steps), columns=seeds, scale=SCALE,
                         title=f"Trained reference pair, same {seeds} seeds, euler {steps} steps")
    path = output_dir / "trained_pair.png"
    grid.save(path)
    return path


if __name__ == "__main__":
    print(render_trained_pair_grid(ROOT / "demo_output"))
