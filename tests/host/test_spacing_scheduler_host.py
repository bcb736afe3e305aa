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
