"""Shared pieces of the ZSNRRescaleCFG host tests: the host's own guider and cfg_function run on
real reference models, and Algorithm 2 written out as the paper's pseudo-code (paper §3.4)."""
from __future__ import annotations

import torch

SIZE = 64  # the reference model's brightness flaw needs >= 64x64 (README "Reference model")
SHIFT = 0.05


def make_setup(host):
    import comfy.samplers

    def reference(prediction, trained_schedule="scaled_linear"):
        return host.node["ZSNRReferenceModel"].execute(
            dataset="brightness_ramp", trained_schedule=trained_schedule, prediction=prediction).result[0]

    condition = host.node["ZSNRReferenceCondition"]
    return {
        "models": {"epsilon": reference("epsilon"), "v_prediction": reference("v_prediction")},
        "reference": reference,
        "positive": condition.execute(subset="dark").result[0],
        "negative": condition.execute(subset="all").result[0],
        "samplers": comfy.samplers,
    }


def ours(host, model, **kwargs):
    args = {"multiplier": 0.7, "space": "v", "terminal_step": "guided", **kwargs}
    return host.node["ZSNRRescaleCFG"].execute(model=model, **args).result[0]


def host_rescale(host, model, multiplier=0.7):
    return host.node["RescaleCFG"]().patch(model, multiplier)[0]


def with_post_cfg(model, function):
    patched = model.clone()
    patched.set_model_sampler_post_cfg_function(function)
    return patched


def shift_and_squash(args):
    """A stand-in for another post-CFG guidance node: an affine change of the guided result."""
    return 0.9 * args["denoised"] + SHIFT


def one_evaluation(model, x, sigmas, extra_args=None, callback=None, disable=None):
    """A k-diffusion-style sampler that returns the guided x0 of a single evaluation at sigmas[0]."""
    return model(x, sigmas[0] * x.new_ones([x.shape[0]]), **extra_args)


def fixed_noise(batch=2, seed=0):
    return torch.randn((batch, 3, SIZE, SIZE), generator=torch.Generator().manual_seed(seed))


def run(setup, model, sigmas, sampler=None, cfg=7.5, seed=0, latent=None):
    """The host's own CFGGuider over `sigmas` (one evaluation by default) with a fixed noise."""
    samplers = setup["samplers"]
    guider = samplers.CFGGuider(model)
    guider.set_conds(setup["positive"], setup["negative"])
    guider.set_cfg(cfg)
    noise = fixed_noise(seed=seed)
    latent = torch.zeros_like(noise) if latent is None else latent
    sampler = sampler or samplers.KSAMPLER(one_evaluation)
    sigmas = torch.as_tensor(sigmas, dtype=torch.float32)
    return guider.sample(noise, latent, sampler, sigmas, disable_pbar=True, seed=seed)


def table_sigmas(model, timesteps):
    table = model.get_model_object("model_sampling").sigmas
    return [float(table[t]) for t in timesteps] + [0.0]


def recorded_predictions(setup, model, sigmas):
    """cond/uncond x0, input and sigma the host hands to post-CFG functions during a real run."""
    record = {}

    def spy(args):
        record.update({key: args[key] for key in ("cond_denoised", "uncond_denoised", "input", "sigma", "cond", "uncond")})
        return args["denoised"]

    run(setup, with_post_cfg(model, spy), sigmas)
    return record


def host_cfg_function(patched, record, cond_scale=7.5, dtype=torch.float64):
    """The host's own comfy.samplers.cfg_function (cfg slot, then post-CFG list) on recorded inputs."""
    import comfy.samplers

    cast = {key: record[key].to(dtype) for key in ("cond_denoised", "uncond_denoised", "input", "sigma")}
    return comfy.samplers.cfg_function(
        patched.model, cast["cond_denoised"], cast["uncond_denoised"], cond_scale, cast["input"], cast["sigma"],
        model_options=patched.model_options, cond=record["cond"], uncond=record["uncond"])


def base_model(host, model_type, **sampling_settings):
    """A real host BaseModel of another family around the reference network (its answers are not
    meaningful for that family; the tests only need real sampling objects and finite predictions)."""
    import comfy.model_base
    import comfy.model_patcher

    reference = host.pack.nodes.reference_model
    config = reference.ReferenceModelConfig(
        {"dataset": "brightness_ramp", "trained_schedule": "scaled_linear", "prediction": "v_prediction"})
    config.sampling_settings = dict(sampling_settings)
    model = comfy.model_base.BaseModel(config, model_type=getattr(comfy.model_base.ModelType, model_type),
                                       device=torch.device("cpu"), unet_model=reference.ReferenceDenoiserNet)
    return comfy.model_patcher.ModelPatcher(model, load_device=torch.device("cpu"), offload_device=torch.device("cpu"))


def synthetic(shape, seed):
    generator = torch.Generator().manual_seed(seed)
    uncond = torch.randn(shape, generator=generator)
    cond = uncond + 0.3 * torch.randn(shape, generator=generator)
    return cond, uncond, 2.0 * torch.randn(shape, generator=generator)


def direct(setup, patched, cond, uncond, x, sigma, cond_scale=7.5):
    record = {"cond_denoised": cond, "uncond_denoised": uncond, "input": x,
              "sigma": torch.full((x.shape[0],), float(sigma), dtype=torch.float64), "cond": setup["positive"], "uncond": setup["negative"]}
    return host_cfg_function(patched, record, cond_scale, dtype=x.dtype)


def written_out_rescale(cond, uncond, scale, multiplier, dims):
    """Paper Algorithm 2, spelled out (torch.std default as in the paper's pseudo-code)."""
    x_cfg = uncond + scale * (cond - uncond)
    rescaled = x_cfg * cond.std(dim=dims, keepdim=True) / x_cfg.std(dim=dims, keepdim=True)
    return multiplier * rescaled + (1 - multiplier) * x_cfg
