"""The confusion matrix of the checkpoint detection (issue #25, docs/detection.md): every model
whose truth is known, sampled through VPredictionAdapter(prediction = auto) alone and followed by
ZeroTerminalSNR(terminal = auto), with the checkpoint's keys lost (the host samples it as SD's
default: epsilon, no zsnr), and what the network was detected as, with the extra model calls.

Models: the reference model (exact denoiser; 4 trained schedules x 2 predictions x 2 data sets x
sizes), the pack's trained networks (their recipes' truth from the file's metadata) and UNets with
random weights (torch's default initialisation, the training's starting point,
tools/train_reference_unet.build_unet), which must come out "cannot tell". Each configuration runs
at batch 1 and 16, full denoise and denoise 0.5, euler with --steps steps at cfg 1: one network
call per step, so any call beyond --steps is the detection's.

    .venv/bin/python benchmarks/detection_matrix.py            # the README matrix
    .venv/bin/python benchmarks/detection_matrix.py --quick    # 32 px only, batch 1 and 4
"""
from __future__ import annotations

import argparse
import collections
import json
import sys
import time
from pathlib import Path

import torch
from _host import (
    RESULTS,
    EvaluationCounter,
    condition,
    load_host,
    reference_model,
    save_results,
    v_adapter,
    zero_snr,
)

SCHEDULES = ("scaled_linear", "scaled_linear_zsnr", "linear", "cosine")
PREDICTIONS = ("epsilon", "v_prediction")
DATASETS = ("brightness_ramp", "colour_blobs")
RECIPES = ("flawed", "fixed", "colour_flawed", "colour_fixed", "colour_v_sd")
ZERO, DECLARED, NOT_APPLICABLE = "zero terminal SNR", "declared schedule", "n/a (epsilon)"


def pack(host, name):
    return sys.modules[f"{host.pack.__name__}.{name}"]


def keys_lost(model):
    """The host's reading of a file without v_pred/ztsnr keys: SD's epsilon, no zsnr."""
    import comfy_extras.nodes_model_advanced as advanced

    return advanced.ModelSamplingDiscrete().patch(model, "eps", False)[0]


def random_unet(host, seed: int, recipe: str = "colour_fixed"):
    """A trained model's BaseModel with the UNet weights of a fresh torch initialisation."""
    import train_reference_unet

    trained = pack(host, "nodes.trained_model")
    model = trained.build_trained_model(recipe)
    torch.manual_seed(seed)
    fresh = train_reference_unet.build_unet(num_classes=len(model.model.zsnr_trained_reference["classes"]))
    model.model.diffusion_model.load_state_dict(fresh.state_dict())
    return model


def colour_condition(host):
    return host.node["ZSNRColourClass"].execute(hue="none").result[0]


def models(host, sizes, quick):
    """(group, name, model factory, positive conditioning, truth prediction, truth terminal, sizes):
    the trained networks and random UNets first, then the reference models."""
    trained = pack(host, "nodes.trained_model")
    for recipe in RECIPES:
        metadata = trained.load_recipe(recipe)[1]
        prediction = metadata["prediction"]
        terminal = NOT_APPLICABLE if prediction == "epsilon" else (ZERO if metadata["zero_terminal_snr"] else DECLARED)
        positive = colour_condition(host) if recipe.startswith("colour") else condition(host)
        yield ("trained", recipe, lambda r=recipe: trained.build_trained_model(r), positive, prediction, terminal, (32,))
    for seed in range(1 if quick else 3):
        yield ("random", f"random UNet seed {seed}", lambda s=seed: random_unet(host, s), colour_condition(host),
               "none", "none", (32,))
    for schedule in SCHEDULES:
        for prediction in PREDICTIONS:
            terminal = NOT_APPLICABLE if prediction == "epsilon" else (ZERO if schedule.endswith("_zsnr") else DECLARED)
            for dataset in DATASETS:
                yield ("reference", f"{schedule} {prediction} {dataset}",
                       lambda s=schedule, p=prediction, d=dataset: reference_model(host, s, p, d),
                       condition(host), prediction, terminal, sizes)


def sample(host, model, positive, size, batch, denoise, steps):
    counter = EvaluationCounter()
    latent = {"samples": torch.zeros(batch, 3, size, size)}
    host.nodes.common_ksampler(counter.attach(model), 0, steps, 1.0, "euler", "simple", positive, positive, latent,
                               denoise=denoise)
    return counter.calls - steps


def verdicts(model):
    detection = model.get_model_object("model_sampling").zsnr_detection
    prediction = detection.prediction.looks_like if detection.prediction is not None else "not judged"
    if detection.terminal is not None:
        terminal = detection.terminal.trained_for
    else:
        terminal = NOT_APPLICABLE if prediction == "epsilon" else "cannot tell"
    return prediction, terminal, detection


def is_wrong(verdict: str, truth: str) -> bool:
    """A confident verdict other than the truth (cannot tell is never wrong; for a random network
    every confident verdict is)."""
    return verdict not in ("cannot tell", NOT_APPLICABLE) and verdict != truth


def run(host, sizes, batches, steps, quick, partial: Path):
    """Every configuration; the records so far are rewritten to `partial` after each one."""
    records = []
    partial.parent.mkdir(parents=True, exist_ok=True)
    for group, name, build, positive, truth_prediction, truth_terminal, model_sizes in models(host, sizes, quick):
        base = keys_lost(build())  # one network per model: its renderings at each size are cached
        for size in model_sizes:
            for batch in batches:
                for denoise in (1.0, 0.5):
                    started = time.perf_counter()
                    alone = v_adapter(host, base, "auto")
                    extra_alone = sample(host, alone, positive, size, batch, denoise, steps)
                    prediction_alone, _, _ = verdicts(alone)
                    both = zero_snr(host, v_adapter(host, base, "auto"), "auto")
                    extra_both = sample(host, both, positive, size, batch, denoise, steps)
                    prediction, terminal, detection = verdicts(both)
                    records.append({
                        "group": group, "model": name, "size": size, "batch": batch, "denoise": denoise,
                        "truth_prediction": truth_prediction, "truth_terminal": truth_terminal,
                        "prediction_alone": prediction_alone, "extra_calls_alone": extra_alone,
                        "prediction": prediction, "terminal": terminal, "extra_calls_both": extra_both,
                        "coefficient": detection.prediction.coefficient if detection.prediction else None,
                        "lambda": detection.terminal.position if detection.terminal else None,
                        "seconds": round(time.perf_counter() - started, 2)})
                    partial.write_text(json.dumps(records))
                    print(f"{group:9s} {name:42s} {size:3d}px b{batch:2d} d{denoise}: {prediction_alone} / {prediction},"
                          f" {terminal}; extra calls {extra_alone} / {extra_both}", flush=True)
    return records


def table(records) -> str:
    rows = collections.Counter()
    wrong = collections.Counter()
    extra = collections.Counter()
    for r in records:
        for kind, verdict, truth in (("prediction (auto alone)", r["prediction_alone"], r["truth_prediction"]),
                                     ("prediction (auto + terminal auto)", r["prediction"], r["truth_prediction"]),
                                     ("terminal", r["terminal"], r["truth_terminal"])):
            rows[(r["group"], kind, truth, verdict)] += 1
            wrong[r["group"]] += is_wrong(verdict, truth)
        extra[("prediction auto", r["denoise"], r["extra_calls_alone"])] += 1
        extra[("both auto", r["denoise"], r["extra_calls_both"])] += 1
    lines = ["| models | verdict on | truth | detected | runs |", "|---|---|---|---|---|"]
    lines += [f"| {g} | {k} | {t} | {v} | {n} |" for (g, k, t, v), n in sorted(rows.items())]
    lines += ["", "| models | wrong verdicts |", "|---|---|"] + [f"| {g} | {n} |" for g, n in sorted(wrong.items())]
    lines += ["", "| chain | denoise | extra model calls per sampling | runs |", "|---|---|---|---|"]
    lines += [f"| {c} | {d} | {e} | {n} |" for (c, d, e), n in sorted(extra.items())]
    return "\n".join(lines)


def at_the_top(host, batch: int = 8) -> str:
    """Why the terminal statistic is not taken at t = T (docs/detection.md): each trained v network's
    UNet called directly on pure noise, null class, at t = 999 and at the probe timestep: the
    high-pass coefficient c_hf and its lambda, and the response of the x0 estimate's mean to a
    brightness offset d of the input (d mean(x0_SD)/d offset, x0 read with SD's schedule; a network
    that ignores its input at T, as one trained at alphā_T = 0 should, gives sqrt(alphā_T) = 0.068,
    the exact SD-schedule denoiser 1/sqrt(alphā_T) times the share of brightness it can read)."""
    detect = pack(host, "samplers.terminal_detect")
    trained = pack(host, "nodes.trained_model")
    lines = ["| network | t | c_hf | lambda | x0 gain per unit offset |", "|---|---|---|---|---|"]
    for recipe in ("fixed", "colour_fixed", "colour_v_sd"):
        model = trained.build_trained_model(recipe)
        metadata = model.model.zsnr_trained_reference
        base = pack(host, "schedules.betas").alphas_cumprod_from_betas(
            pack(host, "schedules.betas").scaled_linear_betas(1000, metadata["beta_start"], metadata["beta_end"]))
        classes = len(metadata["classes"])
        noise = torch.randn(batch, 3, 32, 32, generator=torch.Generator().manual_seed(0))
        offset = 2.0 / noise[0].numel() ** 0.5  # two standard deviations of the noise's own mean
        a, s = float(base[-1]) ** 0.5, (1 - float(base[-1])) ** 0.5
        for timestep in (999, detect.probe_timestep(1000)):
            inputs = torch.cat([noise, noise + offset, noise - offset])
            with torch.no_grad():
                out = model.model.diffusion_model(inputs, torch.full((3 * batch,), float(timestep)),
                                                  context=torch.zeros(3 * batch, 1, classes),
                                                  y=torch.zeros(3 * batch, dtype=torch.long)).double()
            verdict = detect.judge_terminal(out[:batch], noise, base, timestep)
            x0_mean = (a * inputs.double() - s * out).mean(dim=(1, 2, 3))
            gain = float((x0_mean[batch:2 * batch] - x0_mean[2 * batch:]).mean() / (2 * offset))
            lines.append(f"| {recipe} | {timestep} | {verdict.coefficient:.3f} | {verdict.position:.2f} | {gain:.1f} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="32,64,128", help="reference-model latent sizes (trained networks: 32)")
    parser.add_argument("--batches", default="1,16")
    parser.add_argument("--steps", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--quick", action="store_true", help="32 px, batch 1 and 4, one random seed")
    parser.add_argument("--output", type=Path, default=RESULTS / "detection_matrix.json")
    parser.add_argument("--at-the-top", action="store_true", help="only the t = T table of the trained v networks")
    args = parser.parse_args(argv)
    if args.at_the_top:
        print(at_the_top(load_host(args.threads)))
        return 0
    sizes = (32,) if args.quick else tuple(int(s) for s in args.sizes.split(","))
    batches = (1, 4) if args.quick else tuple(int(b) for b in args.batches.split(","))
    host = load_host(args.threads)
    records = run(host, sizes, batches, args.steps, args.quick, args.output.with_suffix(".partial.json"))
    weights = {recipe: entry["sha256"][:12] for recipe, entry in pack(host, "nodes.trained_model").pair_config().items()
               if isinstance(entry, dict)}
    save_results({"args": {k: str(v) for k, v in vars(args).items()}, "weights_sha256": weights, "records": records},
                 args.output, table(records))
    return 1 if any(is_wrong(r[k], r[t]) for r in records for k, t in (("prediction", "truth_prediction"),
                    ("prediction_alone", "truth_prediction"), ("terminal", "truth_terminal"))) else 0


if __name__ == "__main__":
    sys.exit(main())
