"""Wall-time overhead of the pack against the host's own path, and the memory of a patched clone.

Same model, steps, seeds and cfg through the stock KSampler path (nodes.common_ksampler):
  host_bare     the host KSampler, scheduler simple, no patches
  ours_chain    ZeroTerminalSNR (exact) + VPredictionAdapter + trailing + ZSNRRescaleCFG
  host_rescale  the host's RescaleCFG (0.7), scheduler simple
  ours_rescale  ZSNRRescaleCFG (0.7) alone, scheduler simple
Repetitions are interleaved in one process (the order rotates every round, after one warm-up
round), so machine load drifts hit every path alike; medians are reported, and the ratios
ours_chain / host_bare (goal <= 1.02) and ours_rescale / host_rescale (goal <= 1.00).

Two models whose network cost dominates a step, as a real UNet's does:
  reference  the reference model memorising a large random image set (--images, 64x64)
  unet       an SD1.5-layout UNet built from the host's comfy.ldm UNetModel (320 channels, two
             levels, random weights), saved as safetensors and loaded with the host's loader
             (comfy.sd.load_diffusion_model, what UNETLoader runs)

Run from the repository root: .venv/bin/python benchmarks/overhead.py [--quick]
"""
from __future__ import annotations

import argparse
import gc
import os
import statistics
import sys
import time
from pathlib import Path

import _host
import torch

PATHS = ("host_bare", "ours_chain", "host_rescale", "ours_rescale")
CFG, RESCALE = 7.5, 0.7
UNET_FILE = _host.RESULTS / "overhead_unet.safetensors"
UNET_CONFIG = {  # SD1.5's detected layout (context 768, 320 channels), two levels instead of four
    "image_size": 32, "in_channels": 4, "out_channels": 4, "model_channels": 320, "num_res_blocks": [1, 1],
    "channel_mult": [1, 2], "num_heads": 8, "num_head_channels": -1, "use_spatial_transformer": True,
    "transformer_depth": [1, 1], "transformer_depth_middle": 1, "transformer_depth_output": [1, 1, 1, 1],
    "context_dim": 768, "use_linear_in_transformer": False, "adm_in_channels": None, "legacy": False,
}


def resident_mib() -> float:
    """Current resident set size of this process (Linux /proc), MiB."""
    with open("/proc/self/statm") as statm:
        pages = int(statm.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def weights_mib(patcher) -> float:
    return sum(t.numel() * t.element_size() for t in patcher.model.state_dict().values()) / 2**20


def reference_setup(host, images: int, seeds: int):
    generator = torch.Generator().manual_seed(0)
    memorised = torch.rand(images, 64, 64, 3, generator=generator)  # IMAGE layout, 0..1
    model = host.node["ZSNRReferenceModel"].execute(
        dataset="brightness_ramp", trained_schedule="scaled_linear_zsnr", prediction="v_prediction",
        images=memorised).result[0]
    positive, negative = _host.condition(host, "bright"), _host.condition(host, "all")
    return model, positive, negative, torch.zeros(seeds, 3, 64, 64)


def unet_setup(host, size: int, seeds: int):
    import comfy.ops
    import comfy.sd
    import safetensors.torch
    from comfy.ldm.modules.diffusionmodules.openaimodel import UNetModel

    if not UNET_FILE.exists():
        torch.manual_seed(0)
        network = UNetModel(**UNET_CONFIG, operations=comfy.ops.disable_weight_init)
        for parameter in network.parameters():
            torch.nn.init.normal_(parameter, std=0.02)
        UNET_FILE.parent.mkdir(parents=True, exist_ok=True)
        safetensors.torch.save_file({k: v.contiguous() for k, v in network.state_dict().items()}, str(UNET_FILE))
        del network
    model = comfy.sd.load_diffusion_model(str(UNET_FILE))  # the host detects it as SD1.5 (epsilon)
    generator = torch.Generator().manual_seed(1)
    positive = [[torch.randn(1, 77, 768, generator=generator), {}]]
    negative = [[torch.randn(1, 77, 768, generator=generator), {}]]
    return model, positive, negative, torch.zeros(seeds, 4, size, size)


def path_models(host, model) -> dict:
    """The model and scheduler each path samples with; every patch is a clone of `model`."""
    import comfy_extras.nodes_model_advanced as advanced

    ours_rescale = host.node["ZSNRRescaleCFG"].execute(model=model, multiplier=RESCALE).result[0]
    chain = _host.v_adapter(host, _host.zero_snr(host, model, "exact"))
    chain = host.node["ZSNRRescaleCFG"].execute(model=chain, multiplier=RESCALE).result[0]
    return {
        "host_bare": (model, "simple"),
        "ours_chain": (chain, "trailing"),
        "host_rescale": (advanced.RescaleCFG().patch(model, RESCALE)[0], "simple"),
        "ours_rescale": (ours_rescale, "simple"),
    }


def time_paths(host, setup, steps: int, sampler: str, rounds: int) -> dict[str, list[float]]:
    model, positive, negative, latent = setup
    models = path_models(host, model)
    times = {path: [] for path in PATHS}
    for round_index in range(rounds + 1):  # round 0 warms up every path and is dropped
        order = PATHS[round_index % len(PATHS):] + PATHS[:round_index % len(PATHS)]
        for path in order:
            patched, scheduler = models[path]
            start = time.perf_counter()
            host.nodes.common_ksampler(patched, 0, steps, CFG, sampler, scheduler, positive, negative,
                                       {"samples": latent.clone()})
            if round_index:
                times[path].append(time.perf_counter() - start)
        print(f"  round {round_index}/{rounds}: " + "  ".join(
            f"{path} {times[path][-1]:.3f}s" for path in PATHS if times[path]), flush=True)
    return times


def clone_memory(host, setup, sampler: str) -> dict:
    """Resident memory our patched chain adds: RSS after a bare host run (weights resident,
    activations allocated once), then after building the chain and sampling with it. A copy of
    the weights would add weights_mib; activations are the same for both, so they cancel."""
    model, positive, negative, latent = setup

    def sample(patched, scheduler):
        host.nodes.common_ksampler(patched, 0, 2, CFG, sampler, scheduler, positive, negative,
                                   {"samples": latent.clone()})

    sample(model, "simple")
    gc.collect()
    before = resident_mib()
    chain = host.node["ZSNRRescaleCFG"].execute(
        model=_host.v_adapter(host, _host.zero_snr(host, model, "exact")), multiplier=RESCALE).result[0]
    sample(chain, "trailing")
    gc.collect()
    after = resident_mib()
    return {"weights_mib": round(weights_mib(model), 1), "extra_rss_mib": round(after - before, 1),
            "clone_shares_the_module": chain.model is model.model}


def summarise(times: dict[str, list[float]]) -> dict:
    """Medians per path and their ratios; the same ratios per round (paths of one round ran back
    to back) show how far machine noise alone moves a ratio."""
    medians = {path: statistics.median(values) for path, values in times.items()}

    def per_round(numerator, denominator):
        return [round(a / b, 4) for a, b in zip(times[numerator], times[denominator], strict=True)]

    return {
        "seconds_per_round": {path: [round(value, 4) for value in values] for path, values in times.items()},
        "chain_over_bare_per_round": per_round("ours_chain", "host_bare"),
        "ours_over_host_rescale_per_round": per_round("ours_rescale", "host_rescale"),
        "median_seconds": {path: round(value, 4) for path, value in medians.items()},
        "chain_over_bare": round(medians["ours_chain"] / medians["host_bare"], 4),
        "ours_over_host_rescale": round(medians["ours_rescale"] / medians["host_rescale"], 4),
        "rounds": len(times["host_bare"]),
    }


def table(results: dict) -> str:
    lines = ["| model | steps | host_bare s | ours_chain s | (2)/(1) (per round) | host RescaleCFG s | ZSNRRescaleCFG s "
             "| ours/host (per round) | weights MiB | extra RSS of the patched clones MiB |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for name, result in results["models"].items():
        median, memory = result["median_seconds"], result["memory"]
        lines.append(f"| {name} | {result['steps']} | {median['host_bare']:.3f} | {median['ours_chain']:.3f} | "
                     f"{result['chain_over_bare']:.3f} ({_spread(result['chain_over_bare_per_round'])}) | "
                     f"{median['host_rescale']:.3f} | {median['ours_rescale']:.3f} | "
                     f"{result['ours_over_host_rescale']:.3f} ({_spread(result['ours_over_host_rescale_per_round'])}) | "
                     f"{memory['weights_mib']:.0f} | "
                     f"{memory['extra_rss_mib']:.1f} |")
    return "\n".join(lines)


def _spread(values: list[float]) -> str:
    return f"{min(values):.3f}-{max(values):.3f}"


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=7, help="timed rounds (each runs every path once)")
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--sampler", default="euler")
    parser.add_argument("--images", type=int, default=4096, help="images the reference model memorises")
    parser.add_argument("--seeds", type=int, default=4, help="batch size of the reference-model runs")
    parser.add_argument("--unet-size", type=int, default=32, help="latent side of the UNet runs (32 = 256 px)")
    parser.add_argument("--models", default="reference,unet")
    parser.add_argument("--quick", action="store_true", help="3 rounds, 6 steps, 1024 images, 16x16 UNet latents")
    parser.add_argument("--output", type=Path, default=_host.RESULTS / "overhead.json")
    args = parser.parse_args(argv)
    if args.quick:
        args.rounds, args.steps, args.images, args.unet_size = 3, 6, 1024, 16
    host = _host.load_host()
    results = {"command": "benchmarks/overhead.py " + " ".join(sys.argv[1:]), "cfg": CFG,
               "sampler": args.sampler, "torch_threads": torch.get_num_threads(), "models": {}}
    for name in args.models.split(","):
        print(f"{name}:", flush=True)
        setup = (reference_setup(host, args.images, args.seeds) if name == "reference"
                 else unet_setup(host, args.unet_size, 1))
        memory = clone_memory(host, setup, args.sampler)
        result = summarise(time_paths(host, setup, args.steps, args.sampler, args.rounds))
        results["models"][name] = dict(result, memory=memory, steps=args.steps,
                                       batch=int(setup[3].shape[0]), latent=list(setup[3].shape[1:]))
        del setup
        gc.collect()
    _host.save_results(results, args.output, table(results))


if __name__ == "__main__":
    main()
