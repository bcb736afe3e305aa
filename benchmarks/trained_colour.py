"""The paper's claims on the colour networks (docs/trained_colour_networks.md), from freshly sampled
images through the host's stock KSampler path, in-process, the same seeds in every configuration:

(a) spread, unconditional (null class, CFG 1), each network sampled the way its users would:
    colour_flawed (epsilon, SD's schedule) with `leading` and with `trailing` (starts at t = 999),
    Lin et al. 2023 §3 Fig. 1; colour_v_sd (v on SD's schedule, the SD 2.x-v stand-in) with
    `trailing`, and with ZeroTerminalSNR forced on it (what a tool that applies ZTSNR to every v
    model does); colour_fixed (v, Algorithm 1) with the host's zsnr clamp it declares, with
    ZeroTerminalSNR exact + `trailing` (§3.1-3.2), + `leading` (§3.3) and the few-step recipe
    (`logsnr_uniform`, dpmpp_2m, 10 steps). r and W1 of the per-image brightness against the
    training data, and the chroma (saturation) of the samples against the data's.
(b) guidance at SNR 0 (§3.4 Fig. 6): colour_fixed, ZeroTerminalSNR exact + `trailing`, euler 25,
    positive = each hue class, negative = the null class; CFG 1, 7.5 and 12, plain and with
    ZSNRRescaleCFG (Algorithm 2, φ 0.7): chroma against the class's data, clipped pixels, latent
    values beyond [-1, 1], brightness error against the class's data mean, and the fraction of
    samples whose hue is the class's (reference/colour_shapes.hue_class).

    python3 tools/bootstrap.py run benchmarks/trained_colour.py [--seeds 256] [--seeds-per-class 43] [--only spread|guidance]

Writes benchmarks/results/trained_colour/results_<part>.json and tables_<part>.md (git-ignored).
"""
from __future__ import annotations

import argparse
import time

import _host
import pure_core  # noqa: F401 (the zsnr_core package of the pure modules)
import torch
from trained_pair import decoded, saturation, trained
from zsnr_core.reference import colour_shapes, metrics

OUT = _host.RESULTS / "trained_colour"
SIZE, STEPS, FEW_STEPS, RESCALE = 32, 25, 10, 0.7
CFGS = (1.0, 7.5, 12.0)


def colour_class(host, hue="none"):
    return host.node["ZSNRColourClass"].execute(hue=hue).result[0]


def spread_configurations(host):
    """(label, model, sampler, scheduler, steps) of measurement (a)."""
    flawed, v_sd, fixed = (trained(host, f"colour_{name}") for name in ("flawed", "v_sd", "fixed"))
    exact = _host.zero_snr(host, fixed)
    return [
        ("colour_flawed: eps, SD schedule, `leading`, euler", flawed, "euler", "leading", STEPS),
        ("colour_flawed: eps, SD schedule, `trailing` (from t = 999), euler", flawed, "euler", "trailing", STEPS),
        ("colour_v_sd: v, SD schedule, `trailing`, euler", v_sd, "euler", "trailing", STEPS),
        ("colour_v_sd with ZeroTerminalSNR forced on it, `trailing`, euler", _host.zero_snr(host, v_sd), "euler",
         "trailing", STEPS),
        ("colour_fixed: host zsnr clamp it declares, `simple`, euler", fixed, "euler", "simple", STEPS),
        ("colour_fixed: ZeroTerminalSNR exact, `trailing`, euler", exact, "euler", "trailing", STEPS),
        ("colour_fixed: ZeroTerminalSNR exact, `leading`, euler", exact, "euler", "leading", STEPS),
        (f"colour_fixed: ZeroTerminalSNR exact, `logsnr_uniform`, dpmpp_2m, {FEW_STEPS} steps", exact, "dpmpp_2m",
         "logsnr_uniform", FEW_STEPS),
    ]


def measure_spread(host, images, seeds):
    data = images.double().flatten(1).mean(dim=1)
    rows = [{"configuration": "the training data", "chroma": saturation(images)}]
    for label, model, sampler, scheduler, steps in spread_configurations(host):
        started = time.time()
        samples, nfe = _host.ksample(host, model, sampler, scheduler, steps, seeds, SIZE, positive=colour_class(host))
        brightness = samples.double().flatten(1).mean(dim=1)
        rows.append({"configuration": label, "nfe": nfe, "r": metrics.spread_ratio(brightness, data),
                     "w1": metrics.normalised_wasserstein1(brightness, data), "chroma": saturation(samples),
                     "min": float(brightness.min()), "max": float(brightness.max()),
                     "finite": bool(torch.isfinite(samples).all()), "seconds": round(time.time() - started, 1)})
        print(rows[-1], flush=True)
    return {"seeds": seeds, "floor": metrics.noise_floor(data, seeds), "rows": rows}


def guided_row(samples, class_images, hue_index):
    """The §3.4 figures of samples of one class against that class's training images."""
    brightness = samples.double().flatten(1).mean(dim=1)
    return {"clipped": metrics.clipped_fraction(decoded(samples)),
            "beyond_range": float((samples.abs() > 1).double().mean()),
            "brightness_error": metrics.brightness_error(brightness, float(class_images.double().mean())),
            "chroma": saturation(samples), "data_chroma": saturation(class_images),
            "follows_class": float((colour_shapes.hue_class(samples) == hue_index).double().mean()),
            "finite": bool(torch.isfinite(samples).all())}


def measure_guidance(host, images, labels, seeds_per_class):
    exact = _host.zero_snr(host, trained(host, "colour_fixed"))
    variants = [("plain CFG", exact),
                (f"ZSNRRescaleCFG φ {RESCALE}", host.node["ZSNRRescaleCFG"].execute(model=exact, multiplier=RESCALE).result[0])]
    negative = colour_class(host)
    per_class = []
    for cfg in CFGS:
        for variant, model in variants:
            if cfg == 1.0 and variant != "plain CFG":
                continue  # at CFG 1 the host skips the unconditional pass: nothing to rescale
            for hue_index, hue in enumerate(colour_shapes.HUE_NAMES, start=1):
                samples, _ = _host.ksample(host, model, "euler", "trailing", STEPS, seeds_per_class, SIZE, cfg=cfg,
                                           positive=colour_class(host, hue), negative=negative, seed=hue_index)
                per_class.append({"cfg": cfg, "variant": variant, "hue": hue,
                                  **guided_row(samples, images[labels == hue_index], hue_index)})
                print(per_class[-1], flush=True)
    return {"seeds_per_class": seeds_per_class, "per_class": per_class, "rows": average_over_classes(per_class)}


def average_over_classes(per_class):
    rows = {}
    for row in per_class:
        rows.setdefault((row["cfg"], row["variant"]), []).append(row)
    return [{"cfg": cfg, "variant": variant, "finite": all(r["finite"] for r in group),
             **{key: sum(r[key] for r in group) / len(group)
                for key in ("clipped", "beyond_range", "brightness_error", "chroma", "data_chroma", "follows_class")}}
            for (cfg, variant), group in rows.items()]


def spread_table(spread) -> str:
    floor = spread["floor"]
    lines = [f"{spread['seeds']} seeds, 32x32, null class, CFG 1; a perfect sampler: W1 {floor['w1']:.3f} "
             f"(95 % below {floor['w1_q95']:.3f}), r within {floor['r_q025']:.2f}-{floor['r_q975']:.2f}", "",
             "| configuration | NFE | r | W1 | brightness min / max | chroma |", "|---|---|---|---|---|---|"]
    for row in spread["rows"]:
        if "r" not in row:
            lines.append(f"| {row['configuration']} | — | 1 | 0 | — | {row['chroma']:.3f} |")
            continue
        lines.append(f"| {row['configuration']} | {row['nfe']} | {row['r']:.2f} | {row['w1']:.3f} | "
                     f"{row['min']:.2f} / {row['max']:.2f} | {row['chroma']:.3f} |")
    return "\n".join(lines) + "\n"


def guidance_table(guidance) -> str:
    lines = [f"colour_fixed, ZeroTerminalSNR exact + `trailing`, euler {STEPS}, {guidance['seeds_per_class']} seeds "
             "for each of the 6 hue classes, negative = null class; means over the classes", "",
             "| CFG | guidance | chroma (data) | clipped pixels | \\|x\\| > 1 | brightness error | follows the class |",
             "|---|---|---|---|---|---|---|"]
    for row in guidance["rows"]:
        lines.append(f"| {row['cfg']:g} | {row['variant']} | {row['chroma']:.3f} ({row['data_chroma']:.3f}) | "
                     f"{row['clipped']:.4f} | {row['beyond_range']:.4f} | {row['brightness_error']:.3f} | "
                     f"{row['follows_class']:.2f} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=256)
    parser.add_argument("--seeds-per-class", type=int, default=43)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--only", choices=("spread", "guidance"), default=None,
                        help="run one measurement (two processes can then share the two cores)")
    args = parser.parse_args(argv)
    host = _host.load_host(args.threads)
    images, labels = colour_shapes.render_colour_shapes(colour_shapes.DEFAULT_TRAINING_COUNT)
    for part in ("spread", "guidance") if args.only is None else (args.only,):
        if part == "spread":
            results = measure_spread(host, images, args.seeds)
            table = spread_table(results)
        else:
            results = measure_guidance(host, images, labels, args.seeds_per_class)
            table = guidance_table(results)
        (OUT / f"tables_{part}.md").parent.mkdir(parents=True, exist_ok=True)
        (OUT / f"tables_{part}.md").write_text(table)
        _host.save_results(results, OUT / f"results_{part}.json", table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
