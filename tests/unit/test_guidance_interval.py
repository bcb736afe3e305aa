"""The guidance interval's arithmetic (samplers/guidance_interval.py): log-SNR of a (signal, noise)
pair checked against the schedule conversions and first principles, the interval mask, and the
correction that turns a guided result into the conditional prediction outside the interval."""
from __future__ import annotations

import math

import pytest
import torch
from zsnr_core.samplers import guidance, guidance_interval
from zsnr_core.schedules import conversions


@pytest.mark.parametrize("sigma", [0.03, 0.5, 1.0, 14.6, 4518.76])
def test_log_snr_of_a_vp_sigma_is_minus_two_log_sigma(sigma):
    signal, noise = conversions.vp_pair(torch.tensor([sigma], dtype=torch.float64))
    lam = guidance_interval.log_snr(signal, noise)
    # SNR = alphā/(1-alphā) = 1/sigma² (schedules/conversions.py), two independent routes
    torch.testing.assert_close(lam, torch.tensor([-2 * math.log(sigma)], dtype=torch.float64), rtol=1e-12, atol=1e-12)
    alphas_cumprod = conversions.alphas_cumprod_from_sigma(torch.tensor([sigma], dtype=torch.float64))
    torch.testing.assert_close(lam, conversions.log_snr_from_alphas_cumprod(alphas_cumprod), rtol=1e-9, atol=1e-9)


def test_log_snr_with_sigma_data_and_on_the_flow_path():
    sigma = torch.tensor([0.2, 1.0, 3.0], dtype=torch.float64)
    signal, noise = conversions.vp_pair(sigma, sigma_data=0.5)
    torch.testing.assert_close(guidance_interval.log_snr(signal, noise), 2 * torch.log(0.5 / sigma))
    s = torch.tensor([0.1, 0.5, 0.9], dtype=torch.float64)
    signal, noise = conversions.flow_pair(s)
    torch.testing.assert_close(guidance_interval.log_snr(signal, noise), 2 * torch.log((1 - s) / s))
    assert float(guidance_interval.log_snr(*conversions.flow_pair(torch.tensor([0.5], dtype=torch.float64)))) == 0.0


def test_snr_zero_is_minus_infinity_and_no_noise_plus_infinity_exactly():
    signal, noise = conversions.vp_pair(torch.tensor([math.inf, 4518.76, 0.0], dtype=torch.float64), terminal_sigma=4518.76)
    lam = guidance_interval.log_snr(signal, noise)
    assert lam[0] == -math.inf and lam[1] == -math.inf  # the declared sentinel is SNR 0 too
    assert lam[2] == math.inf
    assert not torch.isnan(lam).any()
    flow = guidance_interval.log_snr(*conversions.flow_pair(torch.tensor([1.0, 0.0], dtype=torch.float64)))
    assert flow.tolist() == [-math.inf, math.inf]


def test_interval_is_closed_and_minus_infinity_is_inside_only_without_a_lower_bound():
    lam = torch.tensor([-math.inf, -5.0, -4.999, 0.0, 2.0, 2.001, math.inf])
    assert guidance_interval.in_interval(lam, -5.0, 2.0).tolist() == [False, True, True, True, True, False, False]
    assert guidance_interval.in_interval(lam, -math.inf, math.inf).all()
    assert guidance_interval.guided_steps([-math.inf, -7.9, -4.0], -5.0, math.inf) == [False, False, True]


@pytest.mark.parametrize(("low", "high"), [(1.0, 0.0), (math.nan, 0.0), (0.0, math.nan)])
def test_an_empty_or_nan_interval_is_refused(low, high):
    with pytest.raises(ValueError, match="log-SNR interval"):
        guidance_interval.check_interval(low, high)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.float64])
def test_outside_the_interval_the_result_is_the_conditional_prediction_exactly(dtype):
    generator = torch.Generator().manual_seed(3)
    uncond = torch.randn((3, 4, 8, 8), generator=generator).to(dtype)
    cond = uncond + 0.3 * torch.randn((3, 4, 8, 8), generator=generator).to(dtype)
    guided = guidance.cfg(cond, uncond, 7.5)
    inside = torch.tensor([True, False, True])
    change = guidance_interval.interval_change(guided, cond, inside)
    assert change.dtype == dtype and change.shape == guided.shape
    result = guided + change
    assert torch.equal(result[0], guided[0]) and torch.equal(result[2], guided[2])
    torch.testing.assert_close(result[1], cond[1], rtol=0, atol=float(torch.finfo(dtype).eps) * 8)
    assert (guided[1] - cond[1]).abs().max() > 0.1  # the guidance was far from nothing


def test_five_dimensional_video_latents():
    guided, cond = torch.ones((2, 4, 3, 8, 8)), torch.zeros((2, 4, 3, 8, 8))
    change = guidance_interval.interval_change(guided, cond, torch.tensor([False, True]))
    assert torch.equal((guided + change)[0], cond[0]) and torch.equal(change[1], torch.zeros_like(change[1]))
