"""The host's own nodes next to ours, as users chain them (help pages, "With the host's nodes"):
ModelSamplingDiscrete before and after ZeroTerminalSNR, SetFirstSigma on an exact model, the host's
RescaleCFG / CFGZeroStar / CFGNorm with ZSNRRescaleCFG, the host's AYS / GITS / kl_optimal / beta
schedules on an exact model, and a weight-patched (LoRA-style) model through our clone."""
from __future__ import annotations

import sys

import pytest
import torch
from zsnr_core.schedules.snr_zero import is_snr_zero
from zsnr_host_helpers import condition, host_zsnr_clamp, ksample, reference, v_adapter, zero_snr

pytestmark = pytest.mark.host


def custom_sample(host, model, sigmas, cfg=3.0, batch=4, size=8, seed=0, sampler_name="euler"):
    """SamplerCustomAdvanced with the host's CFGGuider and a sampler (euler) over explicit sigmas."""
    latent = {"samples": torch.zeros(batch, 3, size, size)}
    guider = host.node["CFGGuider"].execute(model, condition(host), condition(host, "dark"), cfg).result[0]
    sampler = host.node["KSamplerSelect"].execute(sampler_name).result[0]
    noise = host.node["RandomNoise"].execute(seed).result[0]
    return host.node["SamplerCustomAdvanced"].execute(noise, guider, sampler, sigmas, latent).result[0]["samples"]


def without_exact_step(host, model):
    """The same model with the pack's first-step wrapper removed: the host's own first step."""
    import comfy.patcher_extension

    bare = model.clone()
    bare.remove_wrappers_with_key(comfy.patcher_extension.WrappersMP.SAMPLER_SAMPLE,
                                  sys.modules[f"{host.pack.__name__}.nodes.zsnr_sampling"].WRAPPER_KEY)
    return bare


def sampling_of(model):
    return model.get_model_object("model_sampling")


@pytest.mark.parametrize("zsnr", [False, True])
def test_model_sampling_discrete_before_ours_is_read_and_after_ours_wins(host, zsnr):
    import comfy_extras.nodes_model_advanced as advanced

    base = reference(host, "scaled_linear", "v_prediction")
    before = zero_snr(host, advanced.ModelSamplingDiscrete().patch(base, "v_prediction", zsnr)[0])
    assert sampling_of(before).zsnr_terminal == "exact" and sampling_of(before).zsnr_prediction == "v_prediction"
    assert torch.equal(sampling_of(before).zsnr_base_alphas_cumprod, sampling_of(zero_snr(host, base)).zsnr_base_alphas_cumprod)
    assert torch.isfinite(ksample(host, before, "euler", "trailing", steps=4, seeds=2, size=8)).all()
    # after ours, the host's node replaces the sampling object: its own path, bit for bit
    after = advanced.ModelSamplingDiscrete().patch(zero_snr(host, base), "v_prediction", zsnr)[0]
    host_only = advanced.ModelSamplingDiscrete().patch(base, "v_prediction", zsnr)[0]
    for sampler in ("euler", "euler_ancestral", "dpmpp_2m_sde"):
        assert torch.equal(ksample(host, after, sampler, "karras", steps=4, seeds=2, size=8),
                           ksample(host, host_only, sampler, "karras", steps=4, seeds=2, size=8))


def test_set_first_sigma_on_an_exact_model_is_the_hosts_path(host):
    """A lowered first sigma (NovelAI-style) is not SNR 0: the pack's first-order step does not
    apply even for heun (samplers/sampler_families.py, FIRST_ORDER), and the result is the host's
    zsnr model's over the same sigmas; from the sentinel heun's first step is the pack's."""
    base = reference(host, "scaled_linear_zsnr", "v_prediction")
    exact = zero_snr(host, base)
    sigmas = host.node["BasicScheduler"].execute(exact, "simple", 6, 1.0).result[0]
    lowered = host.node["SetFirstSigma"].execute(sigmas, 29.0).result[0]
    ours = custom_sample(host, exact, lowered, sampler_name="heun")
    assert torch.equal(ours, custom_sample(host, without_exact_step(host, exact), lowered, sampler_name="heun"))
    hosts = custom_sample(host, host_zsnr_clamp(base), lowered, sampler_name="heun")
    assert torch.allclose(ours, hosts, atol=1e-4), float((ours - hosts).abs().max())
    assert not torch.equal(custom_sample(host, exact, sigmas, sampler_name="heun"),
                           custom_sample(host, without_exact_step(host, exact), sigmas, sampler_name="heun"))


def _recorded_denoised(host, model, sigmas):
    """The post-CFG `denoised` after every post-CFG function the model has, and the args it came with."""
    seen = []

    def record(args):
        seen.append({k: v.clone() if torch.is_tensor(v) else v for k, v in args.items()})
        return args["denoised"]

    recorded = model.clone()
    recorded.set_model_sampler_post_cfg_function(record)
    custom_sample(host, recorded, sigmas, batch=2)
    return seen[0]


def _host_guidance(name, model):
    import comfy_extras.nodes_cfg as cfg_nodes
    import comfy_extras.nodes_model_advanced as advanced

    return {"RescaleCFG": lambda m: advanced.RescaleCFG().patch(m, 0.7)[0],
            "CFGZeroStar": lambda m: cfg_nodes.CFGZeroStar.execute(m).result[0],
            "CFGNorm": lambda m: cfg_nodes.CFGNorm.execute(m, 1.0).result[0]}[name](model)


@pytest.mark.parametrize("host_node", ["RescaleCFG", "CFGZeroStar", "CFGNorm"])
@pytest.mark.parametrize("ours_first", [False, True])
def test_host_guidance_nodes_chain_with_zsnr_rescale_cfg_in_graph_order(host, host_node, ours_first):
    """Both effects are kept: the chain's output is the second node's function applied to the
    first one's output. The host's RescaleCFG replaces the CFG formula itself
    (sampler_cfg_function), so it always acts before every post-CFG function, ours included."""
    def zsnr_rescale(m):
        return host.node["ZSNRRescaleCFG"].execute(model=m, multiplier=0.7).result[0]

    def host_patch(m):
        return _host_guidance(host_node, m)

    model = zero_snr(host, reference(host, "scaled_linear_zsnr", "v_prediction"))
    sigmas = torch.tensor([6.0, 2.0, 0.0])  # the recorder keeps the first model call's, at 6
    chained = host_patch(zsnr_rescale(model)) if ours_first else zsnr_rescale(host_patch(model))
    applied_first, applied_second = (zsnr_rescale, host_patch) if ours_first and host_node != "RescaleCFG" \
        else (host_patch, zsnr_rescale)
    after_first = _recorded_denoised(host, applied_first(model), sigmas)
    after_both = _recorded_denoised(host, chained, sigmas)
    second_only = _recorded_denoised(host, applied_second(model), sigmas)
    second_function = applied_second(model).model_options["sampler_post_cfg_function"][-1]
    assert torch.allclose(after_both["denoised"], second_function(after_first), atol=1e-6)
    for alone in (after_first, second_only):
        assert not torch.allclose(after_both["denoised"], alone["denoised"], atol=1e-4)


@pytest.mark.parametrize("schedule", ["AlignYourStepsScheduler", "GITSScheduler", "kl_optimal", "beta"])
def test_host_schedules_on_an_exact_model(host, schedule):
    """The pack's first-order step engages exactly when the top sigma is the SNR-0 sentinel and the
    sampler's own first step has no finite limit (heun); every other sampler is the host's; no NaN."""
    exact = zero_snr(host, reference(host, "scaled_linear_zsnr", "v_prediction"))
    if schedule == "AlignYourStepsScheduler":
        sigmas = host.node[schedule].execute("SD1", 6, 1.0).result[0]
    elif schedule == "GITSScheduler":
        sigmas = host.node[schedule].execute(1.2, 6, 1.0).result[0]
    else:
        sigmas = host.node["BasicScheduler"].execute(exact, schedule, 6, 1.0).result[0]
    at_snr_zero = bool(is_snr_zero(float(sigmas[0]), sampling_of(exact).zsnr_terminal_sigma))
    # beta reads the model's table and starts at the sentinel; AYS and GITS are fixed tables that top
    # at 14.6; kl_optimal recomputes the top as tan(atan(sigma_max)) in float32, 1.3e-4 below it
    assert at_snr_zero == (schedule == "beta"), float(sigmas[0])
    for sampler in ("euler", "euler_ancestral", "dpmpp_2m", "dpmpp_2m_sde", "heun"):
        ours = custom_sample(host, exact, sigmas, batch=2, sampler_name=sampler)
        bare = custom_sample(host, without_exact_step(host, exact), sigmas, batch=2, sampler_name=sampler)
        assert torch.isfinite(ours).all(), sampler
        assert torch.equal(ours, bare) != (at_snr_zero and sampler == "heun"), sampler


def test_weight_patches_are_kept_through_our_clones(host):
    """A LoRA-style weight patch (ModelPatcher.add_patches, as the host's LoraLoader adds them)
    survives ZeroTerminalSNR, VPredictionAdapter and ZSNRRescaleCFG, and the input model keeps none.
    (The reference model has no weights the host patches; tests/host/test_trained_reference_pair*.py
    samples a patched trained network.)"""
    base = reference(host, "scaled_linear_zsnr", "v_prediction")
    key = "diffusion_model.memorised_images"
    patched = base.clone()
    assert patched.add_patches({key: (torch.full_like(base.model.state_dict()[key], 0.05),)}, 0.5) == [key]
    model = host.node["ZSNRRescaleCFG"].execute(model=v_adapter(host, zero_snr(host, patched)), multiplier=0.7).result[0]
    assert [entry[0] for entry in model.patches[key]] == [0.5]
    assert key not in base.patches and model.patches_uuid == patched.patches_uuid
    assert torch.isfinite(ksample(host, model, "euler", "trailing", steps=4, seeds=2, size=8)).all()
