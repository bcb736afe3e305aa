"""The paper's claims on the trained reference pair (docs/trained_reference_pair.md), measured
from freshly sampled images through the host's stock KSampler path, in-process, same seeds:

(a) spread: flawed-trained vs fixed-trained, unconditional (null class, CFG 1), each sampled the
    way it should be: flawed on its own schedule with `leading` and `trailing` spacing (and the
    host default `normal`); fixed with ZeroTerminalSNR exact + `trailing`, and `logsnr_uniform`
    with dpmpp_2m (and, for comparison, the host's own clamped zsnr schedule it declares).
    Scored with r and W1 against the training data (reference/metrics.py) (Lin et al. §3 Fig. 1, §3.1-3.2).
(b) guidance: fixed-trained, ZeroTerminalSNR exact + trailing, positive = a class (dark, bright),
    negative = the null class, CFG 1 / 3 / 7.5, plain, ZSNRRescaleCFG (φ 0.7) and the host's
    RescaleCFG (0.7): clipped pixels, brightness error against that class's data, saturation (§3.4 Fig. 6).

    python3 tools/bootstrap.py run benchmarks/trained_pair.py [--seeds 256] [--guided-seeds 64] [--threads 1]

Writes benchmarks/results/trained_pair/results.json and tables.md (git-ignored).
"""
from __future__ import annotations

import argparse
import json
import time

import _host
import pure_core  # noqa: F401 (the zsnr_core package of the pure modules)
import torch
from zsnr_core.reference import metrics, procedural_shapes

OUT = _host.RESULTS / "trained_pair"
SIZE = 32
STEPS = 25
FEW_STEPS = 10
RESCALE = 0.7
CFGS = (1.0, 3.0, 7.5)


def trained(host, recipe):
    return host.node["ZSNRTrainedReferenceModel"].execute(recipe=recipe).result[0]


def spread_configurations(host):
    """(label, model, sampler, scheduler, steps) of measurement (a)."""
    flawed, fixed = trained(host, "flawed"), trained(host, "fixed")
    exact = _host.zero_snr(host, fixed)
    return [
        ("flawed: own SD schedule, eps, `leading`, euler", flawed, "euler", "leading", STEPS),
        ("flawed: own SD schedule, eps, `trailing`, euler", flawed, "euler", "trailing", STEPS),
        ("flawed: own SD schedule, eps, `normal` (host default), euler", flawed, "euler", "normal", STEPS),
        ("fixed: host zsnr clamp it declares, v, `simple`, euler", fixed, "euler", "simple", STEPS),
        ("fixed: ZeroTerminalSNR exact, v, `trailing`, euler", exact, "euler", "trailing", STEPS),
        ("fixed: ZeroTerminalSNR exact, v, `logsnr_uniform`, dpmpp_2m", exact, "dpmpp_2m", "logsnr_uniform", STEPS),
        (f"fixed: ZeroTerminalSNR exact, v, `logsnr_uniform`, dpmpp_2m, {FEW_STEPS} steps", exact, "dpmpp_2m",
         "logsnr_uniform", FEW_STEPS),
    ]


def decoded(samples):
    """What the pixel-space VAE decode gives ([-1, 1] latents to [0, 1] images, clamped)."""
    return ((samples.double() + 1) / 2).clamp(0, 1)


def saturation(samples) -> float:
    """reference/metrics.chroma of the decoded samples (docs/trained_reference_pair.md)."""
    return metrics.chroma(decoded(samples))


def measure_spread(host, data, seeds):
    floor = metrics.noise_floor(data, seeds)
    rows = []
    for label, model, sampler, scheduler, steps in spread_configurations(host):
        started = time.time()
        samples, nfe = _host.ksample(host, model, sampler, scheduler, steps, seeds, SIZE)
        brightness = samples.double().flatten(1).mean(dim=1)
        rows.append({"configuration": label, "nfe": nfe, "r": metrics.spread_ratio(brightness, data),
                     "w1": metrics.normalised_wasserstein1(brightness, data),
                     "min": float(brightness.min()), "max": float(brightness.max()),
                     "finite": bool(torch.isfinite(samples).all()), "seconds": round(time.time() - started, 1)})
        print(rows[-1], flush=True)
    return {"seeds": seeds, "floor": floor, "rows": rows}


def guidance_variants(host, model):
    import comfy_extras.nodes_model_advanced as advanced

    return [
        ("plain CFG", model),
        (f"ZSNRRescaleCFG φ {RESCALE}", host.node["ZSNRRescaleCFG"].execute(model=model, multiplier=RESCALE).result[0]),
        (f"host RescaleCFG {RESCALE}", advanced.RescaleCFG().patch(model, RESCALE)[0]),
    ]


def measure_guidance(host, images, seeds):
    labels = procedural_shapes.class_labels(images)
    exact = _host.zero_snr(host, trained(host, "fixed"))
    negative = _host.condition(host, "all")  # the null class
    rows = []
    for subset, index in (("dark", procedural_shapes.DARK_CLASS), ("bright", procedural_shapes.BRIGHT_CLASS)):
        class_images = images[labels == index]
        target = float(class_images.double().mean())
        rows.append({"class": subset, "cfg": None, "variant": "the class's training data", "clipped":
                     metrics.clipped_fraction(decoded(class_images)), "brightness_error": 0.0,
                     "mean": target, "saturation": saturation(class_images)})
        positive = _host.condition(host, subset)
        for cfg in CFGS:
            for variant, model in guidance_variants(host, exact):
                if cfg == 1.0 and variant != "plain CFG":
                    continue  # at CFG 1 the host skips the unconditional pass: nothing to rescale
                samples, _ = _host.ksample(host, model, "euler", "trailing", STEPS, seeds, SIZE, cfg=cfg,
                                           positive=positive, negative=negative)
                brightness = samples.double().flatten(1).mean(dim=1)
                rows.append({"class": subset, "cfg": cfg, "variant": variant,
                             "clipped": metrics.clipped_fraction(decoded(samples)),
                             "brightness_error": metrics.brightness_error(brightness, target),
                             "mean": float(brightness.mean()), "saturation": saturation(samples),
                             "beyond_range": float((samples.abs() > 1).double().mean()),
                             "finite": bool(torch.isfinite(samples).all())})
                print(rows[-1], flush=True)
    return {"seeds": seeds, "rows": rows}


def tables(results) -> str:
    spread = results["spread"]
    lines = [f"(a) {spread['seeds']} seeds, 32x32, null class, CFG 1; floor W1 {spread['floor']['w1']:.3f} "
             f"(95 % {spread['floor']['w1_q95']:.3f}), r 95 % range {spread['floor']['r_q025']:.2f}-"
             f"{spread['floor']['r_q975']:.2f}", "",
             "| configuration | NFE | r | W1 | brightness min / max |", "|---|---|---|---|---|"]
    for row in spread["rows"]:
        lines.append(f"| {row['configuration']} | {row['nfe']} | {row['r']:.2f} | {row['w1']:.3f} | "
                     f"{row['min']:.2f} / {row['max']:.2f} |")
    guided = results["guidance"]
    lines += ["", f"(b) fixed-trained, ZeroTerminalSNR exact + trailing, euler {STEPS}, {guided['seeds']} seeds per "
              "class, negative = null class", "",
              "| class | CFG | guidance | clipped pixels | \\|x\\| > 1 | brightness error | mean brightness | chroma |",
              "|---|---|---|---|---|---|---|---|"]
    for row in guided["rows"]:
        cfg = "—" if row["cfg"] is None else f"{row['cfg']:g}"
        beyond = f"{row['beyond_range']:.4f}" if "beyond_range" in row else "—"
        lines.append(f"| {row['class']} | {cfg} | {row['variant']} | {row['clipped']:.4f} | {beyond} | "
                     f"{row['brightness_error']:.3f} | {row['mean']:.3f} | {row['saturation']:.3f} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=256)
    parser.add_argument("--guided-seeds", type=int, default=64)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--only", choices=("spread", "guidance"), default=None,
                        help="run one measurement (two processes can then share the two cores)")
    parser.add_argument("--tables", action="store_true",
                        help="only write tables.md from the results_spread.json and results_guidance.json of --only runs")
    args = parser.parse_args(argv)
    if args.tables:
        results = {name: json.loads((OUT / f"results_{name}.json").read_text())[name] for name in ("spread", "guidance")}
        (OUT / "tables.md").write_text(tables(results))
        print(tables(results))
        return 0
    host = _host.load_host(args.threads)
    images = procedural_shapes.render_shapes(procedural_shapes.DEFAULT_TRAINING_COUNT)
    data = images.double().flatten(1).mean(dim=1)
    results = {}
    if args.only in (None, "spread"):
        results["spread"] = measure_spread(host, data, args.seeds)
    if args.only in (None, "guidance"):
        results["guidance"] = measure_guidance(host, images, args.guided_seeds)
    OUT.mkdir(parents=True, exist_ok=True)
    name = args.only or "all"
    (OUT / f"results_{name}.json").write_text(json.dumps(results, indent=2) + "\n")
    if len(results) == 2:
        (OUT / "tables.md").write_text(tables(results))
        print(tables(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
