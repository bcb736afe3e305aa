"""What each of the pack's hooks costs per sampling step, against one evaluation of a UNet.

Whole-sampling ratios (overhead.py) move 4-7 % between rounds on this machine, so a 2 % goal
cannot be resolved that way. This times the hooks themselves, on the tensors a step hands them,
each against its host counterpart, and one evaluation of an SD1.5-layout UNet in the same run:

  snr0_mask     ZSNRSamplingMixin.calculate_denoised (nodes/zsnr_sampling.py: the host's x0
                formula, then the SNR-0 mask and torch.where) against the host's own
                ModelSamplingDiscrete + V_PREDICTION calculate_denoised; called once per model
                evaluation, on the cond + uncond batch (2 rows at cfg > 1)
  rescale_cfg   the post-CFG function of ZSNRRescaleCFG (nodes/rescale_cfg.py, phi 0.7, auto
                space, no window) on the args comfy.samplers.cfg_function builds, against the
                host's RescaleCFG cfg function (comfy_extras/nodes_model_advanced.py) on the same
                predictions; called once per step. Ours is a correction added to CFG, so its time
                is compared with the host's whole rescale
  first_step    the exact first step's arithmetic beyond its one model call (nodes/zsnr_sampling.py
                exact_first_step: the sampler's identity and eta, the SNR-0 test of sigmas[0], fresh
                noise for an ancestral sampler without a finite limit (dpm_2_ancestral; samplers
                with a limit take no replaced step and cost only the identity look-up), samplers/first_step.ancestral_step_from_snr_zero, the noise
                handed to the host's sampler); once per sampling, reported per step of --steps
                steps. It replaces the host's first step, which makes the same model call

Latents: SD1.5-sized 4x64x64 (512 px) and SDXL-sized 4x128x128 (1024 px), batch 1, cfg on (2 rows).
The UNet is overhead.py's SD1.5 layout (320 channels, context 768, two levels instead of four:
107 M random weights, from the host's comfy.ldm UNetModel; nothing is downloaded), run once per
repeat on the same 2 rows. A full four-level SD1.5 UNet costs several times more per evaluation,
so the percentages here are upper bounds of what the pack adds to one.

Each figure is the median and inter-quartile range over --repeats timings (a hook timing is the
mean of --inner calls). Goal printed: all hooks together under 0.5 % of a model evaluation per
step. Run: python3 tools/bootstrap.py run benchmarks/hook_overhead.py [--quick]
"""
from __future__ import annotations

import argparse
import math
import statistics
import sys
import time
from pathlib import Path

import _host
import overhead  # its SD1.5-layout UNet configuration: one definition for both benchmarks
import torch

LATENTS = {"sd15": (4, 64, 64), "sdxl": (4, 128, 128), "tiny": (4, 16, 16)}  # tiny: --quick's smoke run
GOAL_PERCENT = 0.5
STEP_SIGMA = 14.6  # an interior sigma; the hooks do the same work at every sigma (masks, no branches)


def timed(function, repeats: int, inner: int) -> list[float]:
    """Seconds per call: `repeats` timings, each the mean over `inner` calls, after one warm-up."""
    function()
    values = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(inner):
            function()
        values.append((time.perf_counter() - start) / inner)
    return values


def spread(values: list[float]) -> dict:
    quartiles = statistics.quantiles(values, n=4) if len(values) > 1 else [values[0]] * 3
    return {"median": statistics.median(values), "iqr": quartiles[2] - quartiles[0], "n": len(values)}


def host_v_sampling():
    """The host's own ModelSamplingDiscrete + V_PREDICTION (SD's scaled_linear schedule), composed
    as upstream comfy/model_base.py model_sampling() composes it."""
    import comfy.model_sampling

    composed = type("HostV", (comfy.model_sampling.ModelSamplingDiscrete, comfy.model_sampling.V_PREDICTION), {})
    return composed()


def unet(host):
    import comfy.ops
    from comfy.ldm.modules.diffusionmodules.openaimodel import UNetModel

    torch.manual_seed(0)
    network = UNetModel(**overhead.UNET_CONFIG, operations=comfy.ops.disable_weight_init)
    for parameter in network.parameters():
        torch.nn.init.normal_(parameter, std=0.02)
    return network.eval()


def measure(host, name: str, shape, args) -> dict:
    generator = torch.Generator().manual_seed(1)
    rows = 2  # cond + uncond of one image, batched as the host batches them at cfg > 1
    x = torch.randn(rows, *shape, generator=generator)
    output = torch.randn(rows, *shape, generator=generator)
    sigma = torch.full((rows,), STEP_SIGMA)
    # ZeroTerminalSNR (exact) on the reference model, its patches applied to the BaseModel as the
    # host applies them for a sampling: model.model_sampling is then the object our hooks see
    patched = _host.zero_snr(host, _host.reference_model(host), "exact")
    patched.patch_model()
    try:
        return _measure(host, name, shape, args, patched.model, x, output, sigma, rows)
    finally:
        patched.unpatch_model()


def _measure(host, name, shape, args, model, x, output, sigma, rows) -> dict:
    import comfy_extras.nodes_model_advanced as advanced

    generator = torch.Generator().manual_seed(2)
    ours_sampling, host_sampling = model.model_sampling, host_v_sampling()
    result = {"latent": list(shape), "rows": rows, "ours_class": type(ours_sampling).__name__}

    # 1. calculate_denoised: ours (host formula + SNR-0 mask) and the host's
    ours_denoised = spread(timed(lambda: ours_sampling.calculate_denoised(sigma, output, x), args.repeats, args.inner))
    host_denoised = spread(timed(lambda: host_sampling.calculate_denoised(sigma, output, x), args.repeats, args.inner))
    result["snr0_mask"] = {"ours": ours_denoised, "host": host_denoised,
                           "added": ours_denoised["median"] - host_denoised["median"]}

    # 2. the post-CFG rescale on one image (cond and uncond predictions of 1 row each)
    x1, cond, uncond = x[:1], output[:1], output[1:]
    denoised = uncond + 3.0 * (cond - uncond)
    post = host.pack.nodes.rescale_cfg.make_post_cfg_function(0.7, "auto", "guided", math.inf, 0.0)
    post_args = {"denoised": denoised, "cond": [None], "uncond": [None], "cond_scale": 3.0, "model": model,
                 "uncond_denoised": uncond, "cond_denoised": cond, "sigma": sigma[:1], "input": x1,
                 "model_options": {}}
    host_rescale = advanced.RescaleCFG().patch(_host.reference_model(host), 0.7)[0]
    host_function = host_rescale.model_options["sampler_cfg_function"]
    host_args = {"cond": x1 - cond, "uncond": x1 - uncond, "cond_scale": 3.0, "sigma": sigma[:1], "input": x1,
                 "cond_denoised": cond, "uncond_denoised": uncond, "model": model, "model_options": {}}
    ours_rescale = spread(timed(lambda: post(post_args), args.repeats, args.inner))
    theirs_rescale = spread(timed(lambda: host_function(host_args), args.repeats, args.inner))
    result["rescale_cfg"] = {"ours": ours_rescale, "host": theirs_rescale, "added": ours_rescale["median"]}

    # 3. the exact first step's bookkeeping (once per sampling), for an ancestral sampler (fresh noise)
    sampling = host.pack.nodes.zsnr_sampling
    ancestral_step_from_snr_zero = host.pack.samplers.first_step.ancestral_step_from_snr_zero  # the pack's modules
    is_snr_zero = host.pack.schedules.snr_zero.is_snr_zero
    import comfy.samplers

    first_step_noise = host.pack.samplers.sampler_families.first_step_noise
    first_order_sampler = comfy.samplers.sampler_object("dpm_2_ancestral")  # replaced step, fresh noise

    sigmas = torch.tensor([float(ours_sampling.zsnr_terminal_sigma), 157.0, 14.6, 0.0])
    noise, latent = x[:1], torch.zeros_like(x[:1])

    def first_step():
        eta, s_noise = first_step_noise(sampling.identify_sampler(first_order_sampler).name, {})
        is_snr_zero(float(sigmas[0]), ours_sampling.zsnr_terminal_sigma)
        fresh = sampling._fresh_noise(noise, 0)
        x_next = ancestral_step_from_snr_zero(cond, noise, fresh, sigmas[1], eta=eta, s_noise=s_noise)
        return (x_next - latent) / sigmas[1]

    per_sampling = spread(timed(first_step, args.repeats, max(1, args.inner // 10)))
    result["first_step"] = {"ours": per_sampling, "added": per_sampling["median"] / args.steps,
                            "per_sampling": per_sampling["median"]}

    # the model evaluation, same rows
    network = unet(host)
    timesteps = torch.full((rows,), 500.0)
    context = torch.randn(rows, 77, 768, generator=generator)
    with torch.inference_mode():
        evaluation = spread(timed(lambda: network(x, timesteps, context=context), args.model_repeats, 1))
    result["unet_evaluation"] = evaluation
    added = sum(result[hook]["added"] for hook in ("snr0_mask", "rescale_cfg", "first_step"))
    result["added_per_step"] = added
    result["percent_of_evaluation"] = 100 * added / evaluation["median"]
    print(f"{name}: UNet {evaluation['median']:.3f} s; hooks add {1e6 * added:.0f} µs per step = "
          f"{result['percent_of_evaluation']:.3f} % (goal < {GOAL_PERCENT} %)", flush=True)
    return result


def table(results: dict) -> str:
    lines = ["| latent | hook | ours µs (IQR) | host's counterpart µs (IQR) | added per step µs | % of one UNet evaluation |",
             "|---|---|---|---|---|---|"]
    for name, result in results["latents"].items():
        evaluation = result["unet_evaluation"]["median"]
        for hook in ("snr0_mask", "rescale_cfg", "first_step"):
            entry = result[hook]
            ours = f"{1e6 * entry['ours']['median']:.1f} ({1e6 * entry['ours']['iqr']:.1f})"
            host = f"{1e6 * entry['host']['median']:.1f} ({1e6 * entry['host']['iqr']:.1f})" if "host" in entry else "–"
            lines.append(f"| {name} {'x'.join(map(str, result['latent']))} | {hook} | {ours} | {host} | "
                         f"{1e6 * entry['added']:.1f} | {100 * entry['added'] / evaluation:.3f} |")
        unet_time = result["unet_evaluation"]
        lines.append(f"| {name} | **all hooks** vs UNet {unet_time['median']:.3f} s (IQR {unet_time['iqr']:.3f}) | | | "
                     f"{1e6 * result['added_per_step']:.1f} | **{result['percent_of_evaluation']:.3f}** "
                     f"({'met' if result['percent_of_evaluation'] < GOAL_PERCENT else 'not met'}) |")
    return "\n".join(lines)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=30, help="timings per hook (median and IQR over them)")
    parser.add_argument("--inner", type=int, default=20, help="hook calls per timing")
    parser.add_argument("--model-repeats", type=int, default=5, help="UNet evaluations timed")
    parser.add_argument("--steps", type=int, default=10, help="steps the once-per-sampling first step is spread over")
    parser.add_argument("--latents", default="sd15,sdxl", help="comma list of " + ", ".join(LATENTS))
    parser.add_argument("--quick", action="store_true", help="5 repeats of 3 calls, 2 UNet evaluations, a 16x16 latent")
    parser.add_argument("--output", type=Path, default=_host.RESULTS / "hook_overhead.json")
    args = parser.parse_args(argv)
    if args.quick:
        args.repeats, args.inner, args.model_repeats, args.latents = 5, 3, 2, "tiny"
    host = _host.load_host()
    results = {"command": "benchmarks/hook_overhead.py " + " ".join(sys.argv[1:]), "torch_threads": torch.get_num_threads(),
               "steps": args.steps, "goal_percent": GOAL_PERCENT, "latents": {}}
    with torch.no_grad():
        for name in args.latents.split(","):
            results["latents"][name] = measure(host, name, LATENTS[name], args)
    _host.save_results(results, args.output, table(results))


if __name__ == "__main__":
    main()
