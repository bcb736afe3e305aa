"""samplers/terminal_detect.py: the high-pass noise coefficient of an exact v denoiser fed pure
noise is sqrt(SNR_t) of the schedule it was trained on (checked here by Monte Carlo on the exact
posterior mean of two memorised image sets, reference/denoiser.py), so its position between the
declared schedule and its zero-terminal-SNR rescale tells which one the network was trained on."""
from __future__ import annotations

import math

import pytest
import torch
from zsnr_core.reference.datasets import render_dataset
from zsnr_core.reference.denoiser import posterior_mean_x0, trained_alphas_cumprod, v_from_x0
from zsnr_core.samplers import terminal_detect as detect

SIZE = 16


def exact_v_on_noise(dataset: str, alphas_cumprod: float, seeds: int, seed: int = 0):
    """(v_hat, z) of the exact denoiser of `dataset` for pure-noise inputs z at ā."""
    data = render_dataset(dataset, SIZE, SIZE).to(torch.float64)
    z = torch.randn(seeds, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    x0 = posterior_mean_x0(z, alphas_cumprod, data)
    return v_from_x0(z, alphas_cumprod, x0), z


@pytest.mark.parametrize("dataset", ["brightness_ramp", "colour_blobs"])
@pytest.mark.parametrize("trained", ["scaled_linear", "scaled_linear_zsnr"])
def test_high_pass_coefficient_is_the_signal_level_and_the_verdict_follows(dataset, trained):
    base = trained_alphas_cumprod("scaled_linear")
    timestep = detect.probe_timestep(len(base))
    alphas = float(trained_alphas_cumprod(trained)[timestep])
    v_hat, z = exact_v_on_noise(dataset, alphas, seeds=32)
    expected = math.sqrt(alphas / (1 - alphas))  # a/s, derived in the module docstring
    measured = detect.high_frequency_coefficient(v_hat, z)
    assert float(measured.mean()) == pytest.approx(expected, abs=0.1 * expected)
    verdict = detect.judge_terminal(v_hat[:1], z[:1], base, timestep)  # a batch of 1 decides too
    assert verdict.trained_for == (detect.ZERO_SNR if trained.endswith("_zsnr") else detect.DECLARED), verdict
    assert verdict.position == pytest.approx(0.0 if trained.endswith("_zsnr") else 1.0, abs=0.15)
    assert verdict.margin > 0.2


def test_the_levels_of_sd_schedule_at_the_probe():
    base = trained_alphas_cumprod("scaled_linear")
    timestep = detect.probe_timestep(1000)
    declared, zero = detect.expected_levels(base, timestep)
    rescaled = trained_alphas_cumprod("scaled_linear_zsnr")
    assert timestep == 849
    assert declared == pytest.approx(math.sqrt(float(base[849] / (1 - base[849]))))
    assert zero == pytest.approx(math.sqrt(float(rescaled[849] / (1 - rescaled[849]))))
    assert zero < (1 - detect.MIN_RELATIVE_GAP) * declared  # decidable on SD's schedule


def test_cosine_cannot_be_told_and_noise_gets_no_verdict():
    cosine = trained_alphas_cumprod("cosine")
    v_hat, z = exact_v_on_noise("brightness_ramp", float(cosine[849]), seeds=2)
    assert detect.judge_terminal(v_hat, z, cosine, 849).trained_for == detect.UNDECIDED
    base = trained_alphas_cumprod("scaled_linear")
    generator = torch.Generator().manual_seed(5)
    noise = torch.randn(4, 3, SIZE, SIZE, generator=generator)
    for output in (torch.randn(noise.shape, generator=generator), -2.0 * noise, noise):
        verdict = detect.judge_terminal(output, noise, base, 849)
        assert verdict.trained_for == detect.UNDECIDED and verdict.reason, verdict


def test_remap_sigmas_keeps_timesteps():
    sd = torch.tensor([0.03, 0.5, 2.0, 14.6], dtype=torch.float64)
    other = torch.tensor([0.02, 0.4, 1.0, 4518.0], dtype=torch.float64)
    sigmas = torch.tensor([4518.0, 1.0, 0.0], dtype=torch.float32)
    assert torch.equal(detect.remap_sigmas(sigmas, other, sd), torch.tensor([14.6, 2.0, 0.0], dtype=torch.float32))
    halfway = detect.remap_sigmas(torch.tensor([math.sqrt(0.4 * 1.0)]), other, sd)  # log-midpoint of 1 and 2
    assert float(halfway) == pytest.approx(math.sqrt(0.5 * 2.0), rel=1e-6)
    assert torch.equal(detect.remap_sigmas(sigmas, other, other), sigmas)
