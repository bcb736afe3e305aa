"""Brightness recovery per network evaluation: r and W1 against NFE, from real sampled images.

Every figure comes from images sampled now through the real host (nodes.common_ksampler, the stock
KSampler path), all seeds of a configuration in one batch, with the reference model: the exact
posterior-mean denoiser over `brightness_ramp` (200 images whose mean brightness is uniform in
[-0.9, 0.9]). A memorising model: these figures say how a sampler and schedule treat the SNR range
where brightness is decided; they are not figures for trained checkpoints.

  r, W1, floor, nn: as defined in reference/metrics.py (its DEFINITIONS), the one metrics module
  the demo and the tests use too; W1 here is the mean over --batches batches of --seeds seeds

Run from the repository root (see benchmarks/README.md):
  .venv/bin/python benchmarks/quality_per_nfe.py                 # every configuration, euler + dpmpp_2m
  .venv/bin/python benchmarks/quality_per_nfe.py --quick         # 64 seeds, a few configurations
  .venv/bin/python benchmarks/quality_per_nfe.py --batches 4 --nfe 25 --samplers all --configs ours/karras

Sizes: --sizes 32,64,128 samples every configuration at each image side (records carry their
size; tables, floors and the NFE plot are per size, charts.w1_against_size plots W1 against size).
Schedules that are nodes, not names in the host's scheduler list (NODE_SCHEDULES: the host's
AlignYourStepsScheduler with its SD1 table, GITSScheduler, and our logsnr_resolution, which needs
the latent's size from TimestepSpacingScheduler's latent input) run through the host's SamplerCustom
with those sigmas, with the same noise as KSampler.

About 420 lines in one file on purpose: sampling, --merge and the two report tables all read and
write the one JSON format of benchmarks/results/; the host glue is in _host.py, the plots in
tools/charts.py, the figures in reference/metrics.py.
"""
from __future__ import annotations

import argparse
import ctypes
import gc
import json
import math
import sys
import time
from pathlib import Path

import _host
import charts
import torch
from pure_core import datasets, metrics  # (tools/ is on PYTHONPATH, tools/bootstrap.py)

# model kind -> how to build it from the reference network; configuration = "kind/scheduler"
MODEL_KINDS = {
    "flawed_sd": "SD schedule, epsilon prediction (the paper's flawed default)",
    "host_zsnr": "host ModelSamplingDiscrete zsnr = true (alphā_T clamped to 4.9e-8), v prediction",
    "ours": "ZeroTerminalSNR terminal = exact (alphā_T = 0, exact first step), v prediction",
}
CONFIGS = (
    "flawed_sd/leading", "flawed_sd/normal",
    "host_zsnr/simple", "host_zsnr/karras", "host_zsnr/sgm_uniform",
    "ours/trailing", "ours/leading", "ours/linspace", "ours/sgm_uniform", "ours/karras", "ours/exponential",
    "ours/logsnr_uniform", "ours/logsnr_resolution",
)
# The strongest host schedules as peers on both models (issue #15); ays_sd1 and gits are nodes
PEER_SCHEDULES = ("karras", "exponential", "kl_optimal", "beta", "ays_sd1", "gits")
PEER_CONFIGS = tuple(f"{kind}/{schedule}" for kind in ("host_zsnr", "ours") for schedule in PEER_SCHEDULES)
DEFAULT_SAMPLERS = ("euler", "dpmpp_2m")  # first order and multistep; benchmarks/README.md adds others
QUICK_SAMPLERS = ("euler", "heun", "dpmpp_2m")
QUICK_CONFIGS = ("flawed_sd/leading", "host_zsnr/simple", "host_zsnr/karras", "ours/trailing", "ours/logsnr_uniform")
STEP_COUNTS = (5, 10, 25, 50)
ADAPTIVE_SAMPLERS = ("dpm_adaptive",)
# At cfg 1 on the CPU these run the same computation as the sampler named second (the _gpu
# variants differ only in where the Brownian tree lives; cfg_pp only changes guided steps);
# a full-list run at 64 seeds gave bit-identical r and W1 for each pair. "--samplers distinct"
# leaves them out.
ALIASES = {
    "euler_cfg_pp": "euler", "euler_ancestral_cfg_pp": "euler_ancestral", "dpmpp_2m_cfg_pp": "dpmpp_2m",
    "res_multistep_cfg_pp": "res_multistep", "res_multistep_ancestral_cfg_pp": "res_multistep_ancestral",
    "gradient_estimation_cfg_pp": "gradient_estimation", "dpmpp_sde_gpu": "dpmpp_sde",
    "dpmpp_2m_sde_gpu": "dpmpp_2m_sde", "dpmpp_2m_sde_heun_gpu": "dpmpp_2m_sde_heun", "dpmpp_3m_sde_gpu": "dpmpp_3m_sde",
}
CALL_SEEDS = 64  # --batch-calls: seeds per call (sample_batches)
GOAL_R = (0.85, 1.15)  # goal (1): r in this range and W1 <= 1.5 x floor
DEFAULT_OUTPUT = _host.RESULTS / "quality_per_nfe.json"


def node_sigmas(host, model, scheduler: str, steps: int, size: int):
    """SIGMAS of a schedule that is a node (NODE_SCHEDULES), for `steps` steps of a size x size latent."""
    node = host.node
    if scheduler == "ays_sd1":
        return node["AlignYourStepsScheduler"].execute(model_type="SD1", steps=steps, denoise=1.0).result[0]
    if scheduler == "gits":  # the node's minimum is 2 steps
        return node["GITSScheduler"].execute(coeff=1.20, steps=max(steps, 2), denoise=1.0).result[0]
    latent = {"samples": torch.zeros(1, 3, size, size)}
    return node["TimestepSpacingScheduler"].execute(model=model, spacing=scheduler, steps=steps, denoise=1.0,
                                                    steps_offset=0, latent=latent).result[0]


NODE_SCHEDULES = ("ays_sd1", "gits", "logsnr_resolution")


def sample(host, model, sampler: str, scheduler: str, steps: int, seeds: int, size: int, seed: int = 0):
    """(samples, NFE): the stock KSampler for a host-list scheduler; SamplerCustom (the host's
    node, same noise as KSampler for the same seed) with node-built sigmas for NODE_SCHEDULES."""
    if scheduler not in NODE_SCHEDULES:
        return _host.ksample(host, model, sampler, scheduler, steps, seeds, size, seed=seed)
    counter = _host.EvaluationCounter()
    positive = _host.condition(host)
    sigmas = node_sigmas(host, model, scheduler, steps, size)
    out = host.node["SamplerCustom"].execute(
        model=counter.attach(model), add_noise=True, noise_seed=seed, cfg=1.0, positive=positive, negative=positive,
        sampler=host.node["KSamplerSelect"].execute(sampler_name=sampler).result[0], sigmas=sigmas,
        latent_image={"samples": torch.zeros(seeds, 3, size, size)}).result[0]
    return out["samples"], counter.calls


def build_model(host, kind: str):
    if kind == "flawed_sd":
        return _host.reference_model(host, "scaled_linear", "epsilon")
    zsnr_trained = _host.reference_model(host, "scaled_linear_zsnr", "v_prediction")
    if kind == "host_zsnr":
        return _host.host_zsnr_clamp(zsnr_trained)
    return _host.zero_snr(host, zsnr_trained, "exact")


def steps_for_budget(host, model, sampler: str, scheduler: str, budget: int) -> int:
    """The most steps whose NFE fits `budget`, found by dry runs on one tiny 8x8 sample (NFE
    depends on the sampler and step count, not on the image size). dpm_adaptive chooses its own
    steps between the schedule's first sigma and its last non-zero one: it gets `budget` steps
    and its NFE is whatever it measures."""
    if sampler in ADAPTIVE_SAMPLERS:
        return budget
    def nfe(steps):
        return sample(host, model, sampler, scheduler, steps, seeds=1, size=8)[1]

    steps = budget
    while steps > 1 and nfe(steps) > budget:
        steps = max(1, min(steps - 1, math.floor(steps * budget / nfe(steps))))
    while nfe(steps + 1) <= budget and steps < 4 * budget:
        steps += 1
    return steps


def score(samples, batches: int, data_images, data_brightness, floor) -> dict:
    """r on all samples; W1 per batch of seeds, averaged (compared with the floor of that mean)."""
    finite = bool(samples.isfinite().all())
    brightness = datasets.mean_brightness(samples.nan_to_num(0.0))
    w1s = [metrics.normalised_wasserstein1(part, data_brightness) for part in brightness.chunk(batches)]
    w1 = sum(w1s) / len(w1s) if finite else float("nan")
    r = metrics.spread_ratio(brightness, data_brightness) if finite else float("nan")
    return {
        "r": r, "w1": w1, "w1_batches": [round(value, 4) for value in w1s],
        "mean_error": float(brightness.mean() - data_brightness.mean()) / float(data_brightness.std(correction=0)),
        "nan_count": int((~samples.isfinite()).sum()),
        "nn_rms": float(metrics.nearest_image_rms(samples.nan_to_num(0.0), data_images).median()),
        "at_floor": finite and w1 <= floor["w1_q95"],
        "goal_1": finite and GOAL_R[0] <= r <= GOAL_R[1] and w1 <= 1.5 * floor["w1"],
    }


def sample_batches(host, model, sampler: str, scheduler: str, steps: int, args, size: int):
    """(samples, NFE) of all --batches x --seeds seeds: one call with --seed, or with --batch-calls
    calls of at most CALL_SEEDS seeds, call k with seed --seed + k (other noise, the same
    statistics; W1 is still per batch of --seeds). That bounds memory: a call holds about 140
    float64 copies of its latents (the reference denoiser's posterior and torchsde's Brownian
    tree, which caches noise of the whole call): 14 GB for 256 seeds at 128x128, and 16 x 256 in
    one call does not fit 24 GB at 64x64."""
    if not args.batch_calls:
        return sample(host, model, sampler, scheduler, steps, args.seeds * args.batches, size, seed=args.seed)
    per_call = min(args.seeds, CALL_SEEDS)
    calls = math.ceil(args.seeds * args.batches / per_call)
    sizes = [min(per_call, args.seeds * args.batches - k * per_call) for k in range(calls)]
    parts = []
    for k, seeds in enumerate(sizes):
        parts.append(sample(host, model, sampler, scheduler, steps, seeds, size, seed=args.seed + k))
        _return_freed_memory()
    return torch.cat([samples for samples, _ in parts]), parts[0][1]


def _return_freed_memory() -> None:
    """Hand memory freed by a call back to the OS. Without it the process grew by about 0.3 GB per
    64-seed call at 128x128 until the kernel killed it at 24 GB: glibc keeps freed blocks of
    torch's CPU allocations in its arenas (malloc_trim(3)); elsewhere than glibc, a no-op."""
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def run(args, save=None) -> dict:
    """Sample every configuration at every size; `save(result)` is called after each record, so a
    run stopped part-way keeps what it measured."""
    host = _host.load_host()
    models = {}
    records = []
    floors = {}
    for size in args.sizes:
        data_images = datasets.render_dataset("brightness_ramp", size, size)
        data_brightness = datasets.mean_brightness(data_images)
        floor = floors[str(size)] = metrics.noise_floor(data_brightness, args.seeds, groups=args.batches)
        for config in args.configs:
            kind, scheduler = config.split("/")
            if kind not in models:
                models[kind] = build_model(host, kind)
            for sampler in args.samplers:
                step_counts = ([(steps_for_budget(host, models[kind], sampler, scheduler, n), f"NFE<={n}")
                                for n in args.nfe] if args.nfe else [(s, f"S={s}") for s in args.steps])
                for steps, column in step_counts:
                    start = time.perf_counter()
                    samples, nfe = sample_batches(host, models[kind], sampler, scheduler, steps, args, size)
                    record = {"config": config, "kind": kind, "scheduler": scheduler, "sampler": sampler,
                              "steps": steps, "column": column, "nfe": nfe, "seeds": args.seeds,
                              "batches": args.batches, "batch_calls": args.batch_calls, "size": size,
                              "seconds": round(time.perf_counter() - start, 2)}
                    record.update(score(samples, args.batches, data_images, data_brightness, floor))
                    records.append(record)
                    print(f"{size:>4} {config:<24} {sampler:<22} S={steps:<3} NFE={nfe:<3} r={record['r']:.3f} "
                          f"W1={record['w1']:.3f} nn={record['nn_rms']:.3f} ({record['seconds']:.1f}s)", flush=True)
                    if save:
                        save(summary(args, floors, records))
    return summary(args, floors, records)


def summary(args, floors, records) -> dict:
    return {"seeds": args.seeds, "batches": args.batches, "sizes": sorted({r["size"] for r in records}),
            "seed": args.seed, "floors": floors, "records": list(records),
            "command": "benchmarks/quality_per_nfe.py " + " ".join(sys.argv[1:]), "kinds": MODEL_KINDS}


def at_size(result: dict, size: int) -> dict:
    """The records of one size, with that size's floor, as one-size results were written (older
    JSONs hold one size: "size" and "floor")."""
    if "floors" not in result:
        return result
    return dict(result, size=size, floor=result["floors"][str(size)],
                records=[record for record in result["records"] if record["size"] == size])


def sizes_of(result: dict) -> list[int]:
    return result.get("sizes") or [result["size"]]


def merge(previous: dict | None, current: dict) -> dict:
    """Records of `current` replace those of `previous` with the same config, sampler, steps."""
    same = ("seeds", "batches", "seed")
    if not previous:
        return current
    if "floors" not in previous:
        raise SystemExit("--merge: the existing results are of the one-size format; use another --output")
    if any(previous.get(key) != current.get(key) for key in same):
        raise SystemExit(f"--merge: the existing results were sampled with "
                         f"{ {key: previous.get(key) for key in same} }, this run with "
                         f"{ {key: current.get(key) for key in same} }; use another --output")
    key = lambda record: (record["size"], record["config"], record["sampler"], record["steps"])  # noqa: E731
    fresh = {key(record) for record in current["records"]}
    kept = [record for record in previous["records"] if key(record) not in fresh]
    commands = previous.get("commands", [previous.get("command")]) + [current["command"]]
    records = kept + current["records"]
    return dict(current, records=records, commands=commands, floors={**previous["floors"], **current["floors"]},
                sizes=sorted({record["size"] for record in records}))


def table(result: dict) -> str:
    """Markdown: one row per configuration and sampler, one column per step count: r / W1 (NFE)."""
    floor = result["floor"]
    records = result["records"]
    columns = sorted({_column(record) for record in records}, key=lambda c: (c[0] == "S", int(c.split("=")[-1])))
    lines = [f"{result['batches']} batches of {result['seeds']} seeds, {result['size']}x{result['size']}; "
             f"W1 = mean over the batches; floor {floor['w1']:.3f} (95 % of perfect samplers below "
             f"{floor['w1_q95']:.3f}); r sampling error ±{floor['r_std']:.3f}; cells: r / W1 (NFE); "
             "* W1 at the floor, + goal (1): r in [0.85, 1.15] and W1 <= 1.5 x floor",
             "", "| configuration | sampler | " + " | ".join(columns) + " |",
             "|---|---|" + "---|" * len(columns)]
    rows = {}
    for record in records:
        rows.setdefault((record["config"], record["sampler"]), {})[_column(record)] = record
    for (config, sampler), cells in rows.items():
        text = [f"{c['r']:.2f} / {c['w1']:.3f}{_mark(c)} ({c['nfe']})" if c else ""
                for c in (cells.get(column) for column in columns)]
        lines.append(f"| {config} | {sampler} | " + " | ".join(text) + " |")
    return "\n".join(lines)


def goal_table(result: dict, column: str = "NFE<=25") -> str:
    """Markdown for goal (1): per sampler, the spacing of ours that meets it with the lowest W1
    (else the lowest W1 of all), from the records measured at `column`; plus any converged run
    (S >= 50) of the same seeds, which shows what an exact sampler scores on exactly these seeds."""
    floor = result["floor"]
    best = {}
    for record in result["records"]:
        if record["kind"] != "ours" or _column(record) != column:
            continue
        rank = (not record.get("goal_1"), record["w1"])
        current = best.get(record["sampler"])
        if current is None or rank < (not current.get("goal_1"), current["w1"]):
            best[record["sampler"]] = record
    tried = sorted({record["scheduler"] for record in result["records"] if _column(record) == column})
    lines = [f"{result['batches']} x {result['seeds']} seeds; floor {floor['w1']:.3f}, goal W1 <= "
             f"{1.5 * floor['w1']:.3f} and r in [{GOAL_R[0]}, {GOAL_R[1]}]; spacings tried: {', '.join(tried)}", "",
             "| sampler | spacing | NFE | r | W1 | goal (1) |", "|---|---|---|---|---|---|"]
    for sampler, record in best.items():
        lines.append(f"| {sampler} | {record['scheduler']} | {record['nfe']} | {record['r']:.2f} | "
                     f"{record['w1']:.3f} | {'met' if record.get('goal_1') else 'not met'} |")
    for record in result["records"]:
        if record["steps"] >= 50 and record["kind"] == "ours":
            lines.append(f"| {record['sampler']} {record['steps']} steps (converged: an exact sampler on these seeds) | "
                         f"{record['scheduler']} | {record['nfe']} | {record['r']:.2f} | {record['w1']:.3f} | "
                         f"{'met' if record.get('goal_1') else 'not met'} |")
    met = sum(1 for record in best.values() if record.get("goal_1"))
    lines += ["", f"goal (1) met by {met} of {len(best)} samplers"]
    return "\n".join(lines)


def size_table(result: dict) -> str:
    """Markdown: one row per configuration and sampler, one column per step count, one block of
    columns per size: r / W1 at each; the floor of each size in the header."""
    sizes = sizes_of(result)
    columns = sorted({_column(record) for record in result["records"]}, key=lambda c: (c[0] == "S", int(c.split("=")[-1])))
    cells = {}
    for record in result["records"]:
        cells[(record["config"], record["sampler"], record["size"], _column(record))] = record
    floors = ", ".join(f"{size}: {result['floors'][str(size)]['w1']:.3f}" for size in sizes)
    lines = [f"{result['batches']} x {result['seeds']} seeds per cell; W1 floor per size {floors}; cells r / W1 "
             "(* at the floor, + goal (1))", "",
             "| configuration | sampler | " + " | ".join(f"{size}² {column}" for size in sizes for column in columns) + " |",
             "|---|---|" + "---|" * (len(sizes) * len(columns))]
    for config, sampler in dict.fromkeys((r["config"], r["sampler"]) for r in result["records"]):
        row = [cells.get((config, sampler, size, column)) for size in sizes for column in columns]
        lines.append(f"| {config} | {sampler} | " + " | ".join(
            f"{c['r']:.2f} / {c['w1']:.3f}{_mark(c)}" if c else "–" for c in row) + " |")
    return "\n".join(lines)


def _column(record) -> str:
    return record.get("column", f"S={record['steps']}")


def _mark(record) -> str:
    return "*" if record["at_floor"] else "+" if record.get("goal_1") else ""


def parse(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=256, help="seeds per batch (W1 is computed per batch)")
    parser.add_argument("--batches", type=int, default=1, help="batches of --seeds, sampled in one call; W1 is "
                        "their mean (one batch of 256 has a W1 spread of 0.03-0.13 even for a perfect sampler)")
    parser.add_argument("--quick", action="store_true", help="1 batch of 64 seeds, S 10 and 25, a few configurations")
    parser.add_argument("--size", type=int, default=64, help="image side in pixels (the flaw grows with it)")
    parser.add_argument("--sizes", default="", help="comma-separated image sides, e.g. 32,64,128 (overrides --size)")
    parser.add_argument("--seed", type=int, default=0, help="KSampler seed of the batch")
    parser.add_argument("--batch-calls", action="store_true", help="sample in calls of at most CALL_SEEDS "
                        "seeds, call k with seed --seed + k: bounded memory for many seeds at large sizes")
    parser.add_argument("--steps", default=",".join(map(str, STEP_COUNTS)), help="comma-separated step counts")
    parser.add_argument("--nfe", default="", help="comma-separated NFE budgets: per sampler, the most steps that fit")
    parser.add_argument("--samplers", default=",".join(DEFAULT_SAMPLERS),
                        help="comma list, 'all' (the host's list) or 'distinct' (all but ALIASES)")
    parser.add_argument("--configs", default=",".join(CONFIGS),
                        help="comma list of kind/scheduler; 'peers' adds PEER_CONFIGS")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help="JSON path (PNG next to it)")
    parser.add_argument("--merge", action="store_true", help="add to an existing JSON of the same seeds and size")
    parser.add_argument("--report", action="store_true", help="only re-print the table and PNG from --output")
    parser.add_argument("--goal-table", default="", metavar="COLUMN",
                        help="with --report: print goal (1) per sampler at COLUMN (e.g. 'NFE<=25') instead")
    args = parser.parse_args(argv)
    if args.quick:
        args.seeds = 64 if args.seeds == 256 else args.seeds
        args.batches = 1
        args.steps = "10,25"
        args.samplers = args.samplers if args.samplers != ",".join(DEFAULT_SAMPLERS) else ",".join(QUICK_SAMPLERS)
        args.configs = args.configs if args.configs != ",".join(CONFIGS) else ",".join(QUICK_CONFIGS)
    args.sizes = [int(s) for s in args.sizes.split(",") if s] or [args.size]
    args.steps = [int(s) for s in args.steps.split(",") if s]
    args.nfe = [int(s) for s in args.nfe.split(",") if s]
    args.configs = list(dict.fromkeys(c for part in args.configs.split(",") if part
                                      for c in (PEER_CONFIGS if part == "peers" else (part,))))
    for config in args.configs:
        if config.split("/")[0] not in MODEL_KINDS or config.count("/") != 1:
            parser.error(f"--configs: {config!r} is not kind/scheduler with kind in {', '.join(MODEL_KINDS)}")
    args.samplers = [s for s in args.samplers.split(",") if s]
    return args


def main(argv=None) -> None:
    args = parse(argv)
    if args.report:
        result = json.loads(args.output.read_text())
        if args.goal_table:
            for size in sizes_of(result):
                print(goal_table(at_size(result, size), args.goal_table))
            return
    else:
        if args.samplers in (["all"], ["distinct"]):
            _host.load_host()
            import comfy.samplers

            args.samplers = [name for name in comfy.samplers.SAMPLER_NAMES
                             if args.samplers == ["all"] or name not in ALIASES]
        previous = json.loads(args.output.read_text()) if args.merge and args.output.exists() else None
        args.output.parent.mkdir(parents=True, exist_ok=True)

        def save(partial):
            merged = merge(previous, partial)
            args.output.write_text(json.dumps(merged, indent=1))
            return merged

        result = save(run(args, save))
    written = [args.output]
    for size in sizes_of(result):
        print(table(at_size(result, size)) + "\n")
        png = args.output.with_name(f"{args.output.stem}{'' if len(sizes_of(result)) == 1 else f'_{size}'}.png")
        charts.w1_against_nfe(at_size(result, size)).save(png)
        written.append(png)
    if len(sizes_of(result)) > 1:
        print(size_table(result))
        png = args.output.with_name(f"{args.output.stem}_per_size.png")
        charts.w1_against_size(result).save(png)
        written.append(png)
    print(f"\nwrote {', '.join(map(str, written))}")


if __name__ == "__main__":
    main()
