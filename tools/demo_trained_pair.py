"""The demo's grids of the pack's trained networks: the grey pair (docs/trained_reference_pair.md)
and the colour networks (docs/trained_colour_networks.md). Each shows the flawed-trained and the
fixed-trained network from the same seeds, then the fixed one under strong CFG without and with
rescale (Lin et al. 2023 §3 Fig. 1 and §3.4 Fig. 6), one labelled row each; the colour grid adds
the v network on SD's schedule and CFG limited to a log-SNR interval (Guidance Interval (zsnr)).

The host runs in-process (tools/inprocess_host.py) from a private base directory under the
git-ignored .demo_host/, the samples go through the stock KSampler path (tools/pack_nodes.py),
and the grid is drawn by demo_images.labelled_grid like the demo's other figures.

    render_trained_pair_grid(output_dir) -> output_dir / "trained_pair.png"
    render_colour_grid(output_dir) -> output_dir / "trained_colour.png"
"""
from __future__ import annotations

from pathlib import Path

import inprocess_host
import pack_nodes
import pure_core  # noqa: F401 (the zsnr_core package of the pure modules)
from comfy_server import ROOT
from demo_images import labelled_grid
from zsnr_core.reference.colour_shapes import HUE_NAMES

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
    return [(label, decoded(pack_nodes.ksample(host, model, "euler", scheduler, steps, seeds, 32, cfg, positive, null)))
            for label, model, scheduler, cfg, positive in runs]


def decoded(samples) -> list:
    """The pixel-space VAE decode: [-1, 1] latents to [H, W, 3] images in 0..1."""
    return list(((samples.double() + 1) / 2).clamp(0, 1).movedim(1, -1).numpy())


def colour_grid_rows(host, seeds: int = SEEDS, steps: int = STEPS, cfg: float = 12.0) -> list[tuple[str, list]]:
    """The colour networks' rows; in the guided rows column k asks for hue k mod 6, seed k."""
    trained = host.node["ZSNRTrainedReferenceModel"]
    colour = host.node["ZSNRColourClass"]
    flawed, v_sd = (trained.execute(recipe=recipe).result[0] for recipe in ("colour_flawed", "colour_v_sd"))
    exact = pack_nodes.zero_snr(host, trained.execute(recipe="colour_fixed").result[0])
    null = colour.execute(hue="none").result[0]
    unguided = [
        ("colour_flawed (SD schedule, eps), leading, unconditional", flawed, "leading"),
        ("colour_v_sd (SD schedule, v: SD 2.x-v), trailing, unconditional", v_sd, "trailing"),
        ("colour_fixed (ZTSNR exact, v), trailing, unconditional", exact, "trailing"),
    ]
    rows = [(label, decoded(pack_nodes.ksample(host, model, "euler", scheduler, steps, seeds, 32, 1.0, null, null)))
            for label, model, scheduler in unguided]
    guided = [
        (f"colour_fixed, hue per column, CFG {cfg:g}, plain", exact),
        (f"colour_fixed, CFG {cfg:g}, ZSNRRescaleCFG 0.7", host.node["ZSNRRescaleCFG"].execute(model=exact, multiplier=0.7).result[0]),
        (f"colour_fixed, CFG {cfg:g}, Guidance Interval (defaults)", host.node["ZSNRGuidanceInterval"].execute(model=exact).result[0]),
    ]
    for label, model in guided:
        images = []
        for column in range(seeds):
            positive = colour.execute(hue=HUE_NAMES[column % len(HUE_NAMES)]).result[0]
            images += decoded(pack_nodes.ksample(host, model, "euler", "trailing", steps, 1, 32, cfg, positive, null, seed=column))
        rows.append((label, images))
    return rows


def render_grid(name: str, rows_of, title: str, output_dir, seeds: int, steps: int, base_directory) -> Path:
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    host = inprocess_host.load_host(Path(base_directory or ROOT / ".demo_host" / "trained_pair"), quiet=True)
    grid = labelled_grid(rows_of(host, seeds, steps), columns=seeds, scale=SCALE, title=title)
    path = output_dir / f"{name}.png"
    grid.save(path)
    return path


def render_trained_pair_grid(output_dir, seeds: int = SEEDS, steps: int = STEPS, base_directory=None) -> Path:
    """Sample the trained pair in-process and write output_dir/trained_pair.png; returns its path.
    base_directory: the in-process host's private folder (default .demo_host/trained_pair)."""
    return render_grid("trained_pair", grid_rows, f"Trained reference pair, same {seeds} seeds, euler {steps} steps",
                       output_dir, seeds, steps, base_directory)


def render_colour_grid(output_dir, seeds: int = SEEDS, steps: int = STEPS, base_directory=None) -> Path:
    """Sample the colour networks in-process and write output_dir/trained_colour.png; returns its path."""
    return render_grid("trained_colour", colour_grid_rows, f"Colour networks, same {seeds} seeds, euler {steps} steps",
                       output_dir, seeds, steps, base_directory)


if __name__ == "__main__":
    print(render_trained_pair_grid(ROOT / "demo_output"))
    print(render_colour_grid(ROOT / "demo_output"))
