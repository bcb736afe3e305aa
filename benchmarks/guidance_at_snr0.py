"""Guidance at SNR 0, measured on the colour network (docs/guidance_at_snr0.md, issue #26).

The network: Trained Reference Model (zsnr) `colour_fixed` (v prediction, zero terminal SNR),
sampled with ZeroTerminalSNR exact + `trailing`, euler, 25 steps, 32x32; positive = a hue class
(Colour Class (zsnr)), negative = `none`. Every class gets the same seeds.

(guidance) CFG 1 (the conditional prediction alone), then CFG 3 / 7.5 / 12: plain CFG, ZSNRRescaleCFG 0.7 (guided and `terminal_step: unguided`),
    the host's RescaleCFG 0.7, APG / CFGZeroStar / CFGNorm with the host's defaults.
(sweep) the same CFGs: Guidance Interval (zsnr) with λ_min alone and λ_max alone over the schedule's
    steps (how the default was chosen); (combined) its default alone and after ZSNRRescaleCFG.
(lora) CFG 7.5, the "grey and noisy" report (RescaleCFG with several LoRAs, worst on SDE samplers;
    reForge #417): CFG 1, plain and ZSNRRescaleCFG 0.7, on the network and on the network with three
    chained LoRA-like patches (random rank-4 updates through the host's own LoRA loader), euler and
    dpmpp_2m_sde.

Figures per configuration, over all classes: chroma (saturation, reference/metrics.chroma; the
data's beside it), clipped pixels, brightness error (mean over classes of |mean brightness - the
class's training-data mean|), class separation (fraction of samples whose reference/colour_shapes
.hue_class is the conditioned class), high-frequency residual (noise; the data's beside it).

    python3 tools/bootstrap.py run benchmarks/guidance_at_snr0.py --part guidance|sweep|combined|lora [--seeds 32] [--cfgs 1 3 7.5 12]
    python3 tools/bootstrap.py run benchmarks/guidance_at_snr0.py --tables

Writes benchmarks/results/guidance_at_snr0/results_<part>[_<cfgs>].json and tables.md (git-ignored).
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import _host
import pure_core  # noqa: F401 (the zsnr_core package of the pure modules)
import torch
from trained_pair import decoded, saturation
from zsnr_core.reference import colour_shapes, metrics

OUT = _host.RESULTS / "guidance_at_snr0"
SIZE, STEPS, RESCALE = 32, 25, 0.7
CFGS = (1.0, 3.0, 7.5, 12.0)
# (λ_min, λ_max); ±30: no bound. -10: only the SNR-0 step is left out (the next step is λ -7.9).
SWEEP = tuple((low, 30.0) for low in (-10.0, -6.0, -4.0, -2.0)) + tuple((-30.0, high) for high in (-4.0, -2.0, 0.0, 2.0))
LORA_SAMPLERS = ("euler", "dpmpp_2m_sde")
LORA_COUNT, LORA_RANK, LORA_RELATIVE = 3, 4, 0.1


def colour_model(host):
    return _host.zero_snr(host, host.node["ZSNRTrainedReferenceModel"].execute(recipe="colour_fixed").result[0])


def interval(host, model, lambda_min=None, lambda_max=30.0):
    node = host.node["ZSNRGuidanceInterval"]
    lambda_min = host.pack.nodes.guidance_interval.DEFAULT_LAMBDA_MIN if lambda_min is None else lambda_min
    return node.execute(model=model, lambda_min=lambda_min, lambda_max=lambda_max).result[0]


def ours(host, model, terminal_step="guided"):
    return host.node["ZSNRRescaleCFG"].execute(model=model, multiplier=RESCALE, terminal_step=terminal_step).result[0]


def guidance_variants(host, model):
    node = host.node
    return [
        ("plain CFG", model),
        (f"ZSNRRescaleCFG {RESCALE}", ours(host, model)),
        (f"ZSNRRescaleCFG {RESCALE}, terminal_step unguided", ours(host, model, "unguided")),
        (f"host RescaleCFG {RESCALE}", node["RescaleCFG"]().patch(model, RESCALE)[0]),
        ("APG (eta 1, norm_threshold 5, momentum 0)", node["APG"].execute(model, 1.0, 5.0, 0.0).result[0]),
        ("CFGZeroStar", node["CFGZeroStar"].execute(model).result[0]),
        ("CFGNorm (strength 1)", node["CFGNorm"].execute(model, 1.0).result[0]),
    ]


def combined_variants(host, model):
    """After the sweep chose the default: the interval alone and after the rescale."""
    return [("Guidance Interval (default)", interval(host, model)),
            (f"ZSNRRescaleCFG {RESCALE}, then Guidance Interval (default)", interval(host, ours(host, model)))]


def lora_patched(model, count=LORA_COUNT):
    """The model with `count` chained LoRA-like patches, loaded as LoraLoaderModelOnly loads a file
    (comfy.sd.load_lora_for_models): each a random rank-LORA_RANK update of every conv and linear
    weight of the UNet, its Frobenius norm LORA_RELATIVE of the weight's."""
    import comfy.sd

    weights = {k: v for k, v in model.model.diffusion_model.state_dict().items() if k.endswith(".weight") and v.ndim in (2, 4)}
    for index in range(count):
        generator, lora = torch.Generator().manual_seed(1000 + index), {}
        for key, weight in weights.items():
            name = "lora_unet_" + key[: -len(".weight")].replace(".", "_")
            down = torch.randn((LORA_RANK, *weight.shape[1:]), generator=generator)
            up = torch.randn((weight.shape[0], LORA_RANK) + (1,) * (weight.ndim - 2), generator=generator)
            delta = up.flatten(1) @ down.flatten(1)
            up = up * (LORA_RELATIVE * float(weight.norm()) / float(delta.norm()))
            lora.update({f"{name}.lora_up.weight": up, f"{name}.lora_down.weight": down,
                         f"{name}.alpha": torch.tensor(float(LORA_RANK))})
        model = comfy.sd.load_lora_for_models(model, None, lora, 1.0, 0.0)[0]
    return model


def high_frequency(samples) -> float:
    """RMS of each decoded image minus its 3x3 box blur (per channel, edges replicated): noise and fine detail."""
    images = decoded(samples)
    blurred = torch.nn.functional.avg_pool2d(torch.nn.functional.pad(images, (1, 1, 1, 1), mode="replicate"), 3, stride=1)
    return float((images - blurred).pow(2).mean().sqrt())


def class_statistics(images, labels):
    return {int(c): {"brightness": float(images[labels == c].double().mean())} for c in labels.unique()}


def measure(host, model, sampler, cfg, seeds, stats, hues=colour_shapes.HUE_NAMES, steps=STEPS):
    """Sample every hue class (or `hues`) with the same seeds; the figures over all of them."""
    negative = host.node["ZSNRColourClass"].execute(hue="none").result[0]
    started, errors, samples_all, separated, nfe = time.time(), [], [], 0, 0
    for hue in hues:
        index = colour_shapes.CLASS_NAMES.index(hue)
        positive = host.node["ZSNRColourClass"].execute(hue=hue).result[0]
        samples, calls = _host.ksample(host, model, sampler, "trailing", steps, seeds, SIZE, cfg=cfg,
                                       positive=positive, negative=negative)
        errors.append(metrics.brightness_error(samples.double().flatten(1).mean(dim=1), stats[index]["brightness"]))
        separated += int((colour_shapes.hue_class(samples) == index).sum())
        samples_all.append(samples)
        nfe = calls
    samples = torch.cat(samples_all)
    return {"chroma": saturation(samples), "clipped": metrics.clipped_fraction(decoded(samples)),
            "brightness_error": sum(errors) / len(errors), "separation": separated / samples.shape[0],
            "high_frequency": high_frequency(samples), "beyond_range": float((samples.abs() > 1).double().mean()),
            "finite": bool(torch.isfinite(samples).all()), "nfe": nfe, "seeds": seeds,
            "seconds": round(time.time() - started, 1)}


def brightness_error_floor(images, labels, seeds, draws=2000) -> float:
    """The brightness error a perfect sampler gets with `seeds` samples per class: draw that many
    training images of each class `draws` times (reference/metrics.noise_floor's idea)."""
    generator, errors = torch.Generator().manual_seed(0), []
    brightness = images.double().flatten(1).mean(dim=1)
    for label in labels.unique():
        values = brightness[labels == label]
        picks = values[torch.randint(0, values.numel(), (draws, seeds), generator=generator)]
        errors.append((picks.mean(dim=1) - values.mean()).abs().mean())
    return float(torch.stack(errors).mean())


def data_row(images, labels, seeds):
    """The training data's figures; its brightness error is the floor at `seeds` per class."""
    return {"chroma": saturation(images), "clipped": metrics.clipped_fraction(decoded(images)),
            "brightness_error": brightness_error_floor(images, labels, seeds),
            "separation": float((colour_shapes.hue_class(images) == labels).double().mean()),
            "high_frequency": high_frequency(images)}


def run_part(host, part, cfgs, seeds, stats, output: Path, header: dict):
    """Measure a part's configurations; `output` is rewritten after every row, so a run cut short
    keeps what it measured."""
    model, rows, started = colour_model(host), [], time.time()

    def record(**row):
        rows.append(row)
        print(json.dumps(row), flush=True)
        output.write_text(json.dumps({**header, "seconds": round(time.time() - started), "rows": rows}, indent=1))

    if part in ("guidance", "combined"):
        variants = guidance_variants if part == "guidance" else combined_variants
        for cfg in cfgs:
            if cfg == 1.0:  # the host skips the negative pass: there is no guidance to change
                record(cfg=cfg, variant="conditional alone (CFG 1)", **measure(host, model, "euler", 1.0, seeds, stats))
                continue
            for variant, patched in variants(host, model):
                record(cfg=cfg, variant=variant, **measure(host, patched, "euler", cfg, seeds, stats))
    elif part == "sweep":
        for cfg in cfgs:
            for low, high in SWEEP:
                record(cfg=cfg, variant=f"interval [{low:g}, {high:g}]", lambda_min=low, lambda_max=high,
                       **measure(host, interval(host, model, low, high), "euler", cfg, seeds, stats))
    else:
        base = host.node["ZSNRTrainedReferenceModel"].execute(recipe="colour_fixed").result[0]
        for weights, network in (("network", model), (f"{LORA_COUNT} LoRA-like patches", _host.zero_snr(host, lora_patched(base)))):
            for sampler in LORA_SAMPLERS:
                record(cfg=1.0, weights=weights, sampler=sampler, variant="conditional alone (CFG 1)",
                       **measure(host, network, sampler, 1.0, seeds, stats))
                # (the host's RescaleCFG equals ours to 1e-5 on v models: tests/host/test_rescale_cfg_host.py)
                for variant, patched in (("plain CFG", network), (f"ZSNRRescaleCFG {RESCALE}", ours(host, network))):
                    for cfg in cfgs:
                        record(cfg=cfg, weights=weights, sampler=sampler, variant=variant,
                               **measure(host, patched, sampler, cfg, seeds, stats))
    return rows


COLUMNS = ("chroma", "clipped", "brightness_error", "separation", "high_frequency")


def table(title, rows, data, keys=("cfg", "variant")) -> list[str]:
    lines = ["", title, "", "| " + " | ".join(keys) + " | chroma | clipped | brightness error | class separation | "
             "high-freq. | NFE | seeds |", "|" + "---|" * (len(keys) + 7)]
    lines.append("| " + " | ".join(["data"] + ["—"] * (len(keys) - 1)) + " | " + " | ".join(
        f"{data[c]:.3f}" for c in COLUMNS) + " | — | — |")
    for row in rows:
        cells = [f"{row[k]:g}" if isinstance(row[k], float) else str(row[k]) for k in keys]
        lines.append("| " + " | ".join(cells) + " | " + " | ".join(f"{row[c]:.3f}" for c in COLUMNS)
                     + f" | {row['nfe']} | {row['seeds']}×6 |")
    return lines


def tables(out=OUT) -> str:
    data = json.loads((out / "data.json").read_text())
    parts = {}
    for path in sorted(out.glob("results_*.json")):
        result = json.loads(path.read_text())
        parts.setdefault(result["part"], []).extend(result["rows"])
    lines = [f"weights: colour_fixed sha256 {data['sha256']}"]
    for part, title, keys in (("guidance", "(guidance)", ("cfg", "variant")), ("sweep", "(sweep)", ("cfg", "variant")),
                              ("combined", "(combined)", ("cfg", "variant")),
                              ("lora", "(lora)", ("weights", "sampler", "cfg", "variant"))):
        if part in parts:
            rows = sorted(parts[part], key=lambda r: tuple(str(r[k]) if k != "cfg" else f"{r[k]:06.2f}" for k in keys[:-1]))
            lines += table(title, rows, data["data"], keys)
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--part", choices=("guidance", "sweep", "combined", "lora"), default="guidance")
    parser.add_argument("--seeds", type=int, default=32, help="seeds per hue class (6 classes)")
    parser.add_argument("--cfgs", type=float, nargs="+", default=None)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--tables", action="store_true", help="only write tables.md from the results files")
    parser.add_argument("--out", type=Path, default=OUT, help=f"results folder (default {OUT.relative_to(_host.ROOT)})")
    args = parser.parse_args(argv)
    out = args.out
    if args.tables:
        (out / "tables.md").write_text(tables(out))
        print(tables(out))
        return 0
    host = _host.load_host(args.threads)
    images, labels = colour_shapes.render_colour_shapes(colour_shapes.DEFAULT_TRAINING_COUNT)
    stats = class_statistics(images, labels)
    out.mkdir(parents=True, exist_ok=True)
    sha256 = host.pack.nodes.trained_model.pair_config()["colour_fixed"]["sha256"]
    (out / "data.json").write_text(json.dumps({"sha256": sha256, "data": data_row(images, labels, args.seeds)}, indent=1))
    cfgs = tuple(args.cfgs or {"lora": (7.5,), "guidance": CFGS}.get(args.part, CFGS[1:]))
    name = f"results_{args.part}_{'_'.join(f'{c:g}' for c in cfgs)}.json"
    run_part(host, args.part, cfgs, args.seeds, stats, out / name, {"part": args.part, "sha256": sha256})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
