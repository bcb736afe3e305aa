"""TimestepSpacingScheduler and the KSampler-list registration inside the real host."""
from __future__ import annotations

import logging

import pytest
import torch

pytestmark = pytest.mark.host


@pytest.fixture(scope="module")
def sd_model(host):
    """The reference model trained on SD's schedule: its sampling table is the host's own SD table."""
    return host.node["ZSNRReferenceModel"].execute(
        dataset="brightness_ramp", trained_schedule="scaled_linear", prediction="epsilon").result[0]


def run_scheduler(host, model, **kwargs):
    args = {"spacing": "trailing", "steps": 10, "denoise": 1.0, "steps_offset": 0, **kwargs}
    return host.node["TimestepSpacingScheduler"].execute(model=model, **args).result[0]


def test_sigmas_are_the_model_table_at_exact_timesteps(host, sd_model):
    table = sd_model.get_model_object("model_sampling").sigmas
    sigmas = run_scheduler(host, sd_model, spacing="trailing", steps=10)
    # paper Table 2 trailing, 1-indexed 100, 200, …, 1000 → 0-indexed 99 … 999, descending
    expected = torch.cat([table[torch.arange(999, 0, -100)], torch.zeros(1)])
    assert torch.equal(sigmas.float(), expected.float())


def test_sgm_uniform_agrees_with_the_host(host, sd_model):
    import comfy.samplers

    model_sampling = sd_model.get_model_object("model_sampling")
    for steps in (1, 3, 7, 20, 33, 100):
        ours = run_scheduler(host, sd_model, spacing="sgm_uniform", steps=steps)
        theirs = comfy.samplers.calculate_sigmas(model_sampling, "sgm_uniform", steps)
        torch.testing.assert_close(ours.double(), theirs.double(), rtol=1e-5, atol=1e-6)


def test_denoise_matches_basic_scheduler_semantics(host, sd_model):
    full = run_scheduler(host, sd_model, steps=int(8 / 0.5))
    partial_run = run_scheduler(host, sd_model, steps=8, denoise=0.5)
    assert torch.equal(partial_run, full[-9:])
    assert run_scheduler(host, sd_model, steps=8, denoise=0.0).numel() == 0


def test_spacings_are_in_the_host_scheduler_registry(host, sd_model):
    import comfy.samplers

    model_sampling = sd_model.get_model_object("model_sampling")
    for spacing in ("trailing", "leading", "linspace"):
        assert spacing in comfy.samplers.KSampler.SCHEDULERS
        via_host = comfy.samplers.calculate_sigmas(model_sampling, spacing, 12)
        via_node = run_scheduler(host, sd_model, spacing=spacing, steps=12)
        assert torch.equal(via_host, via_node)


def test_foreign_scheduler_of_the_same_name_is_never_replaced(host, caplog):
    import comfy.samplers

    saved = comfy.samplers.SCHEDULER_HANDLERS["leading"]
    foreign = comfy.samplers.SchedulerHandler(lambda model_sampling, steps: torch.zeros(steps + 1))
    comfy.samplers.SCHEDULER_HANDLERS["leading"] = foreign
    try:
        with caplog.at_level(logging.WARNING):
            registered = host.pack.nodes.schedulers.register_host_schedulers()
        assert "leading" not in registered
        assert comfy.samplers.SCHEDULER_HANDLERS["leading"] is foreign
        assert "already registered" in caplog.text
        assert comfy.samplers.SCHEDULER_NAMES.count("leading") == 1
    finally:
        comfy.samplers.SCHEDULER_HANDLERS["leading"] = saved


def test_ksampler_samples_with_a_registered_spacing(host, sd_model):
    positive = host.node["ZSNRReferenceCondition"].execute(subset="all").result[0]
    latent = {"samples": torch.zeros(4, 3, 32, 32)}
    (out,) = host.nodes.common_ksampler(sd_model, 1, 6, 1.0, "euler", "trailing", positive, positive, latent)
    assert out["samples"].shape == (4, 3, 32, 32)
    assert torch.isfinite(out["samples"]).all()


def test_bad_spacing_names_the_node_and_valid_choices(host, sd_model):
    with pytest.raises(ValueError, match="TimestepSpacingScheduler.*trailing"):
        run_scheduler(host, sd_model, spacing="bogus")


@pytest.fixture(scope="module")
def exact_model(host):
    """The reference model on the zero-terminal-SNR schedule, made exact by ZeroTerminalSNR."""
    from pack_nodes import reference, zero_snr

    return zero_snr(host, reference(host), "exact")


def test_logsnr_resolution_takes_the_size_from_the_latent(host, exact_model):
    from zsnr_core.schedules import spacing

    table = exact_model.get_model_object("model_sampling").sigmas
    by_size = {}
    for height, width in ((16, 16), (64, 64), (128, 96)):
        latent = {"samples": torch.zeros(2, 4, height, width)}
        sigmas = run_scheduler(host, exact_model, spacing="logsnr_resolution", steps=8, latent=latent)
        expected = spacing.spacing_sigmas("logsnr_resolution", 8, table, latent_size=(height, width))
        assert torch.equal(sigmas, expected)
        by_size[(height, width)] = sigmas
    # unconnected: the reference size 64x64, which is logsnr_uniform
    reference_size = run_scheduler(host, exact_model, spacing="logsnr_resolution", steps=8)
    assert torch.equal(reference_size, by_size[(64, 64)])
    assert torch.equal(reference_size, run_scheduler(host, exact_model, spacing="logsnr_uniform", steps=8))
    # a larger latent is sampled at more noise (the low-SNR end moves down), never less
    assert (by_size[(128, 96)] >= by_size[(64, 64)]).all() and (by_size[(16, 16)] <= by_size[(64, 64)]).all()
    assert not torch.equal(by_size[(16, 16)], by_size[(128, 96)])
    # a video latent [B, C, T, H, W]: the spatial size is the last two dimensions
    video = run_scheduler(host, exact_model, spacing="logsnr_resolution", steps=8,
                          latent={"samples": torch.zeros(1, 4, 3, 16, 16)})
    assert torch.equal(video, by_size[(16, 16)])


def test_logsnr_resolution_in_the_host_list_spaces_for_the_reference_size(host, exact_model):
    import comfy.samplers

    assert "logsnr_resolution" in comfy.samplers.KSampler.SCHEDULERS
    model_sampling = exact_model.get_model_object("model_sampling")
    for steps in (1, 2, 5, 12):
        via_host = comfy.samplers.calculate_sigmas(model_sampling, "logsnr_resolution", steps)
        assert torch.equal(via_host, run_scheduler(host, exact_model, spacing="logsnr_resolution", steps=steps,
                                                   latent={"samples": torch.zeros(1, 4, 64, 64)}))


@pytest.mark.parametrize("size", [16, 48])
def test_logsnr_resolution_samples_without_nan(host, exact_model, size):
    from pack_nodes import condition

    node = host.node
    latent = {"samples": torch.zeros(4, 3, size, size)}
    sigmas = run_scheduler(host, exact_model, spacing="logsnr_resolution", steps=5, latent=latent)
    guider = node["BasicGuider"].execute(model=exact_model, conditioning=condition(host)).result[0]
    noise = node["RandomNoise"].execute(noise_seed=0).result[0]
    for sampler_name in ("euler", "dpmpp_2m", "dpmpp_2m_sde"):
        sampler = node["KSamplerSelect"].execute(sampler_name=sampler_name).result[0]
        out = node["SamplerCustomAdvanced"].execute(noise=noise, guider=guider, sampler=sampler, sigmas=sigmas,
                                                    latent_image=latent).result[0]["samples"]
        assert out.shape == (4, 3, size, size) and torch.isfinite(out).all(), sampler_name
    positive = condition(host)
    (out,) = host.nodes.common_ksampler(exact_model, 0, 5, 1.0, "dpmpp_2m", "logsnr_resolution", positive, positive,
                                        latent)
    assert torch.isfinite(out["samples"]).all()


def test_a_latent_without_spatial_samples_names_the_node_and_input(host, exact_model):
    for bad in ({"samples": torch.zeros(4)}, {"noise_mask": torch.zeros(1, 8, 8)}, "latent"):
        with pytest.raises(ValueError, match="TimestepSpacingScheduler: input 'latent'"):
            run_scheduler(host, exact_model, spacing="logsnr_resolution", latent=bad)
