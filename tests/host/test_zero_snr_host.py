"""ZeroTerminalSNR and VPredictionAdapter inside the real host: the rescaled schedule, the exact
SNR-0 step, isolation of the input model, composition, and the second-order-sampler failure the
host's own clamp shows (README "How exact SNR 0 works inside the host")."""
from __future__ import annotations

import logging

import pytest
import torch
from zsnr_host_helpers import (
    brightness_spread_ratio,
    condition,
    host_zsnr_clamp,
    ksample,
    reference,
    v_adapter,
    zero_snr,
)

pytestmark = pytest.mark.host


def sampling_of(model):
    return model.get_model_object("model_sampling")


def test_exact_rescale_reaches_alphas_cumprod_zero(host):
    from zsnr_core.schedules.betas import (
        alphas_cumprod_from_betas,
        make_betas,
        rescale_alphas_cumprod_zero_terminal_snr,
    )

    patched = zero_snr(host, reference(host, "scaled_linear"))
    sampling = sampling_of(patched)
    expected = rescale_alphas_cumprod_zero_terminal_snr(alphas_cumprod_from_betas(make_betas("scaled_linear")))
    assert sampling.zsnr_alphas_cumprod[-1] == 0.0
    torch.testing.assert_close(sampling.zsnr_alphas_cumprod, expected, rtol=0, atol=1e-15)
    # every finite entry is the rescaled sigma; the top one is the finite SNR-0 sentinel
    sigma = ((1 - expected[:-1]) / expected[:-1]).sqrt()
    torch.testing.assert_close(sampling.sigmas[:-1].double(), sigma, rtol=1e-6, atol=0)
    assert torch.isfinite(sampling.sigmas).all()
    assert sampling.sigmas[-1] == pytest.approx(sampling.zsnr_terminal_sigma, rel=1e-6)


@pytest.mark.parametrize("terminal, alphas_cumprod_T", [("clamp_comfy", 4.8973451890853435e-08),
                                                        ("clamp_diffusers", 2.0**-24)])
def test_clamp_terminals_match_the_peers(host, terminal, alphas_cumprod_T):
    sampling = sampling_of(zero_snr(host, reference(host, "scaled_linear"), terminal))
    assert sampling.zsnr_alphas_cumprod[-1] == alphas_cumprod_T
    assert sampling.zsnr_terminal_sigma is None  # no sentinel: the host's own first step
    if terminal == "clamp_comfy":  # bit-for-bit the host's own zsnr option
        host_table = sampling_of(host_zsnr_clamp(reference(host, "scaled_linear"))).sigmas
        torch.testing.assert_close(sampling.sigmas, host_table, rtol=1e-6, atol=0)


def test_denoised_at_snr_zero_is_exactly_minus_v(host):
    model = zero_snr(host, reference(host, "scaled_linear_zsnr"))
    sampling = sampling_of(model)
    sigma = torch.full((4,), sampling.zsnr_terminal_sigma)
    v = torch.randn(4, 3, 8, 8)
    x = torch.randn(4, 3, 8, 8) * sigma[0]
    assert torch.equal(sampling.calculate_denoised(sigma, v, x), -v)
    # and through the real network: x0 at SNR 0 is the dataset mean (paper §5.2)
    network = model.model.diffusion_model
    context = condition(host)[0][0]
    raw_v = network(sampling.calculate_input(sigma, x), sampling.timestep(sigma).float(), context=context)
    mean = network.memorised_at(8, 8, x.device).mean(dim=0).float()
    x0 = sampling.calculate_denoised(sigma, raw_v.float(), x)
    torch.testing.assert_close(x0, mean.expand_as(x0), rtol=0, atol=1e-6)


def test_input_model_is_never_mutated(host):
    original = reference(host, "scaled_linear_zsnr")
    before = ksample(host, original, "euler", "simple", steps=6, seeds=4)
    table_before = sampling_of(original).sigmas.clone()
    patched = v_adapter(host, zero_snr(host, original))
    ksample(host, patched, "euler", "trailing", steps=6, seeds=4)
    after = ksample(host, original, "euler", "simple", steps=6, seeds=4)
    assert torch.equal(before, after)
    assert torch.equal(sampling_of(original).sigmas, table_before)
    assert sampling_of(original) is not sampling_of(patched)


def test_composition_order_and_idempotence(host):
    base = reference(host, "scaled_linear_zsnr", prediction="epsilon")
    one = v_adapter(host, zero_snr(host, base))
    other = zero_snr(host, v_adapter(host, base))
    twice = zero_snr(host, zero_snr(host, v_adapter(host, base)))
    for model in (other, twice):
        a, b = sampling_of(one), sampling_of(model)
        assert type(a) is type(b)
        assert torch.equal(a.sigmas, b.sigmas) and torch.equal(a.zsnr_alphas_cumprod, b.zsnr_alphas_cumprod)
    assert torch.equal(ksample(host, one, "euler", "trailing", 5, 4), ksample(host, twice, "euler", "trailing", 5, 4))


def test_v_adapter_keeps_the_rescale_and_the_host_clamp_is_recognised(host):
    clamp = host_zsnr_clamp(reference(host, "scaled_linear_zsnr"), prediction="eps")
    adapted = sampling_of(v_adapter(host, clamp))
    assert adapted.zsnr_terminal == "clamp_comfy"
    exact = sampling_of(zero_snr(host, clamp))
    assert exact.zsnr_alphas_cumprod[-1] == 0.0


def test_epsilon_model_warns(host, caplog):
    with caplog.at_level(logging.WARNING):
        zero_snr(host, reference(host, "scaled_linear", prediction="epsilon"))
    assert "epsilon" in caplog.text and "VPredictionAdapter" in caplog.text


def test_continuous_edm_model_is_a_clear_error(host):
    import comfy_extras.nodes_model_advanced as advanced

    edm = advanced.ModelSamplingContinuousEDM().patch(reference(host), "v_prediction", 120.0, 0.002)[0]
    with pytest.raises(ValueError, match="ZeroTerminalSNR: input 'model'.*ModelSamplingContinuousEDM"):
        zero_snr(host, edm)


def test_flow_model_is_returned_unchanged(host, caplog):
    import comfy_extras.nodes_model_advanced as advanced

    flow = advanced.ModelSamplingSD3().patch(reference(host), 3.0)[0]
    with caplog.at_level(logging.INFO):
        assert zero_snr(host, flow) is flow
    assert "flow" in caplog.text


def test_exact_first_step_matches_diffusers_ddim_trajectory(host):
    """KSampler ddim + trailing through our nodes equals diffusers' DDIMScheduler (rescale_betas_zero_snr,
    trailing, v_prediction) stepping the same network from the same noise."""
    from diffusers import DDIMScheduler

    steps, batch, size = 10, 4, 16
    model = zero_snr(host, reference(host, "scaled_linear_zsnr"))
    network = model.model.diffusion_model
    context = condition(host)[0][0]
    noise = torch.randn(batch, 3, size, size, generator=torch.Generator().manual_seed(0))
    scheduler = DDIMScheduler(beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012,
                              rescale_betas_zero_snr=True, timestep_spacing="trailing",
                              prediction_type="v_prediction", clip_sample=False, set_alpha_to_one=True)
    scheduler.set_timesteps(steps)
    x = noise.double()  # VP sample at SNR 0 is the noise itself
    for t in scheduler.timesteps:
        v = network(x.float(), t.reshape(1).float(), context=context).double()
        x = scheduler.step(v, t, x, eta=0.0).prev_sample
    import comfy.sample
    import comfy.samplers

    positive = condition(host)
    sigmas = host.node["TimestepSpacingScheduler"].execute(
        model=model, spacing="trailing", steps=steps, denoise=1.0, steps_offset=0).result[0]
    guider = comfy.samplers.CFGGuider(model)
    guider.set_conds(positive, positive)
    guider.set_cfg(1.0)
    ours = guider.sample(noise, torch.zeros_like(noise), comfy.samplers.sampler_object("ddim"), sigmas, seed=0)
    torch.testing.assert_close(ours.double(), x, rtol=0, atol=1e-4)


@pytest.mark.parametrize("sampler", ["heun", "dpm_2_ancestral", "heunpp2"])
def test_second_order_samplers_do_not_overshoot_from_snr_zero(host, sampler):
    """The host's clamp lets heun take a second-order step across the terminal interval and
    over-disperses brightness (r ≈ 1.7 measured on the host, docs/benchmarks.md); the pack's
    first-order step for heun and dpm_2_ancestral does not, nor does heunpp2's own step, whose
    corrections are weighted by sigma_1/sigma_0 (r ≤ 1.15)."""
    base = reference(host, "scaled_linear_zsnr")
    ours = brightness_spread_ratio(ksample(host, zero_snr(host, base), sampler, "simple", 10, seeds=64, size=64))
    assert ours <= 1.15, ours
    if sampler == "heun":
        theirs = brightness_spread_ratio(ksample(host, host_zsnr_clamp(base), sampler, "simple", 10, seeds=64, size=64))
        assert theirs > 1.4, theirs


@pytest.mark.parametrize("schedule", ["scaled_linear", "linear", "cosine"])
def test_exact_table_is_strictly_increasing_for_every_family(host, schedule):
    """DDPM linear's second-to-last rescaled sigma (≈ 15406) is above the host's clamp sigma, so
    the sentinel must adapt; every spacing must then still produce valid sigmas."""
    model = zero_snr(host, reference(host, schedule))
    sigmas = sampling_of(model).sigmas
    assert torch.all(sigmas[1:] > sigmas[:-1])
    for spacing in ("trailing", "leading", "linspace", "sgm_uniform"):
        out = host.node["TimestepSpacingScheduler"].execute(
            model=model, spacing=spacing, steps=10, denoise=1.0, steps_offset=0).result[0]
        assert torch.isfinite(out).all() and torch.all(out[1:] < out[:-1])
    samples = ksample(host, model, "heun", "trailing", 4, seeds=2, size=16)
    assert torch.isfinite(samples).all()


def test_exact_first_step_records_no_autograd_graph(host):
    """Outside the server's inference_mode (a script sampling in-process), every model call of
    the exact chain must run without autograd, as the host's own samplers do; a recorded graph
    holds the first call's activations until sampling ends."""
    import comfy.patcher_extension

    grad_enabled = []

    def record(executor, *args, **kwargs):
        grad_enabled.append(torch.is_grad_enabled())
        return executor(*args, **kwargs)

    model = zero_snr(host, reference(host, "scaled_linear_zsnr")).clone()
    model.add_wrapper_with_key(comfy.patcher_extension.WrappersMP.DIFFUSION_MODEL, "test_grad_probe", record)
    with torch.enable_grad():
        samples = ksample(host, model, "euler", "trailing", 3, seeds=2, size=16)
    assert grad_enabled and not any(grad_enabled), grad_enabled
    assert samples.grad_fn is None


def test_a_clamp_that_does_not_fit_the_schedule_is_refused(host):
    # DDPM linear after Algorithm 1: alphā_{T-2} ≈ 4.2e-9 is below both clamps
    linear = reference(host, "linear")
    for terminal in ("clamp_comfy", "clamp_diffusers"):
        with pytest.raises(ValueError, match=f"ZeroTerminalSNR: input 'terminal' = '{terminal}'.*exact for this model"):
            zero_snr(host, linear, terminal)
    table = sampling_of(zero_snr(host, linear, "exact")).sigmas
    assert bool((table[1:] > table[:-1]).all())
