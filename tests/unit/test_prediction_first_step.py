"""x0/eps/v conversions (paper §6, samplers/prediction.py) and the exact first step from SNR 0, checked against the
finite formulas of k-diffusion and diffusers' DDIMScheduler."""

from __future__ import annotations

import math

import pytest
import torch
from diffusers import DDIMScheduler
from zsnr_core.samplers import first_step, prediction
from zsnr_core.schedules import betas, conversions

SHAPE = (2, 3, 8, 8)


def gaussian(seed: int, dtype=torch.float64) -> torch.Tensor:
    return torch.randn(SHAPE, generator=torch.Generator().manual_seed(seed), dtype=dtype)


def zero_snr_alphas_cumprod() -> torch.Tensor:
    return betas.alphas_cumprod_from_betas(betas.rescale_zero_terminal_snr(betas.make_betas("scaled_linear")))


ALPHAS_CUMPROD = [0.999, 0.5, 0.01, 1e-6]


def get_ancestral_step(sigma_from: float, sigma_to: float, eta: float) -> tuple[float, float]:
    """k-diffusion sampling.get_ancestral_step at finite sigma_from, as defined there."""
    if not eta:
        return sigma_to, 0.0
    up = min(sigma_to, eta * math.sqrt(sigma_to**2 * (sigma_from**2 - sigma_to**2) / sigma_from**2))
    return math.sqrt(sigma_to**2 - up**2), up


def vp(alphas_cumprod):
    """(signal, noise) = (sqrt(ā), sqrt(1-ā)) of paper eq. 1, as schedules/conversions.py gives it."""
    return conversions.sqrt_alpha_sigma_pair(alphas_cumprod)


@pytest.mark.parametrize("alphas_cumprod", ALPHAS_CUMPROD)
def test_parameterisations_round_trip(alphas_cumprod):
    x0, eps = gaussian(1), gaussian(2)
    x_t = math.sqrt(alphas_cumprod) * x0 + math.sqrt(1 - alphas_cumprod) * eps  # paper eq. 1
    signal, noise = vp(alphas_cumprod)
    v = prediction.prediction_from_x0("v", "vp", x_t, x0, signal, noise)
    # v = sqrt(ā)·eps - sqrt(1-ā)·x0 written out (paper §6)
    torch.testing.assert_close(v, math.sqrt(alphas_cumprod) * eps - math.sqrt(1 - alphas_cumprod) * x0)
    torch.testing.assert_close(prediction.x0_from_prediction("v", "vp", x_t, v, signal, noise), x0)
    torch.testing.assert_close(prediction.x0_from_prediction("eps", "vp", x_t, eps, signal, noise), x0,
                               rtol=1e-9, atol=1e-9)
    torch.testing.assert_close(prediction.prediction_from_x0("eps", "vp", x_t, x0, signal, noise), eps,
                               rtol=1e-9, atol=1e-9)


def test_x0_from_v_at_snr_zero_is_exactly_minus_v():
    x_t, v = gaussian(3, torch.float32), gaussian(4, torch.float32)
    signal, noise = vp(0.0)
    x0 = prediction.x0_from_prediction("v", "vp", x_t, v, signal, noise)
    assert x0.dtype == torch.float32
    assert torch.equal(x0.view(torch.int32), (-v).view(torch.int32))  # bitwise
    assert torch.equal(prediction.prediction_from_x0("eps", "vp", x_t, gaussian(5, torch.float32), signal, noise), x_t)


def test_epsilon_route_refuses_snr_zero():
    signal, noise = vp(torch.tensor([0.5, 0.0]))
    with pytest.raises(ValueError, match=r"epsilon cannot give x0 at SNR 0 \(paper §6\)"):
        prediction.x0_from_prediction("eps", "vp", gaussian(1), gaussian(2), signal, noise)


def test_per_sample_pairs_broadcast_and_keep_dtype():
    signal, noise = vp(torch.tensor([0.0, 0.25], dtype=torch.float64))
    x_t, v = gaussian(6, torch.float32), gaussian(7, torch.float32)
    x0 = prediction.x0_from_prediction("v", "vp", x_t, v, signal, noise)
    assert x0.dtype == torch.float32
    assert torch.equal(x0[0], -v[0])
    torch.testing.assert_close(x0[1], 0.5 * x_t[1] - math.sqrt(0.75) * v[1])


def test_ddim_step_from_snr_zero_is_the_limit_of_the_finite_euler_step():
    x0_hat, noise = gaussian(10), gaussian(11)
    sigma_next = 14.6
    limit = first_step.ddim_step_from_snr_zero(x0_hat, noise, sigma_next)
    errors = []
    for sigma_from in (1e6, 1e8):
        # k-diffusion sample_euler: VE sample x = sqrt(1+σ²)·z of the VP input z = noise, then
        # x + (σ_next - σ)·(x - x0_hat)/σ
        x = math.sqrt(1 + sigma_from**2) * noise
        finite = x + (sigma_next - sigma_from) * (x - x0_hat) / sigma_from
        errors.append((finite - limit).abs().max().item())
    # the error of eps_hat is O(|x0_hat|/σ): it must shrink ~100x per 100x in sigma_from
    assert errors[0] < 1e-3 and errors[1] < errors[0] / 50


@pytest.mark.parametrize("eta", [0.0, 0.3, 1.0, 1.7])
@pytest.mark.parametrize("sigma_to", [0.03, 1.0, 14.6, 158.0])
def test_ancestral_limits_are_the_limit_of_get_ancestral_step(eta, sigma_to):
    down, up = (value.item() for value in first_step.ancestral_limits(sigma_to, eta))
    errors = []
    for sigma_from in (1e6, 1e8):
        finite_down, finite_up = get_ancestral_step(sigma_from, sigma_to, eta)
        errors.append(max(abs(finite_down - down), abs(finite_up - up)))
        # sigma_up is off by O(σ_to³/σ_from²), sigma_down = sqrt(σ_to² - σ_up²) by O(σ_to²/σ_from)
        assert errors[-1] <= 2 * sigma_to**2 / sigma_from + 1e-12
    assert errors[1] <= errors[0]


def test_ancestral_limits_at_the_ends():
    assert [v.item() for v in first_step.ancestral_limits(5.0, 1.0)] == [0.0, 5.0]
    assert [v.item() for v in first_step.ancestral_limits(5.0, 0.0)] == [5.0, 0.0]
    assert [v.item() for v in first_step.ancestral_limits(0.0, 0.5)] == [0.0, 0.0]
    for bad_eta in (-0.5, math.inf, math.nan):
        with pytest.raises(ValueError, match="eta"):
            first_step.ancestral_limits(5.0, bad_eta)
    for bad_sigma in (-1.0, math.inf):
        with pytest.raises(ValueError, match="sigma_next"):
            first_step.ancestral_limits(bad_sigma, 1.0)


@pytest.mark.parametrize("eta", [0.0, 0.5, 1.0])
def test_ancestral_step_is_the_limit_of_the_finite_euler_ancestral_step(eta):
    x0_hat, noise, fresh = gaussian(12), gaussian(13), gaussian(14)
    sigma_next, s_noise = 14.6, 0.7
    limit = first_step.ancestral_step_from_snr_zero(x0_hat, noise, fresh, sigma_next, eta, s_noise)
    errors = []
    for sigma_from in (1e6, 1e8):
        # k-diffusion sample_euler_ancestral without its sigma_down == 0 shortcut (never taken at
        # finite sigma_from and sigma_next > 0)
        down, up = get_ancestral_step(sigma_from, sigma_next, eta)
        x = math.sqrt(1 + sigma_from**2) * noise
        finite = x + (x - x0_hat) / sigma_from * (down - sigma_from) + fresh * s_noise * up
        errors.append((finite - limit).abs().max().item())
    assert errors[0] < 1e-2 and errors[1] < errors[0] / 50


def test_ancestral_with_eta_zero_is_the_ddim_step():
    x0_hat, noise, fresh = (
        gaussian(15, torch.float32),
        gaussian(16, torch.float32),
        gaussian(17, torch.float32),
    )
    ddim = first_step.ddim_step_from_snr_zero(x0_hat, noise, 3.5)
    ancestral = first_step.ancestral_step_from_snr_zero(x0_hat, noise, fresh, 3.5, eta=0.0)
    assert ancestral.dtype == torch.float32
    assert torch.equal(ancestral, ddim)


def test_eta_one_adds_only_fresh_noise_scaled_by_s_noise():
    x0_hat, noise, fresh = gaussian(18), gaussian(19), gaussian(20)
    stepped = first_step.ancestral_step_from_snr_zero(x0_hat, noise, fresh, 2.0, eta=1.0, s_noise=0.5)
    torch.testing.assert_close(stepped, x0_hat + 2.0 * 0.5 * fresh, rtol=0, atol=0)


@pytest.mark.parametrize("eta", [0.0, 0.5, 1.0])
def test_first_step_matches_diffusers_ddim_at_zero_terminal_snr(eta):
    # diffusers' DDIMScheduler with rescale_betas_zero_snr steps from ā_999 = 0 exactly in VP form;
    # our VE step divided back by sqrt(1+σ_next²) must give the same sample
    scheduler = DDIMScheduler(
        num_train_timesteps=1000,
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        rescale_betas_zero_snr=True,
        prediction_type="v_prediction",
        timestep_spacing="trailing",
        clip_sample=False,
    )
    # its own alphā, held in float64: in float32 its eta = 1 direction term sqrt(1 - ā_prev - std²)
    # cancels to sqrt(rounding error) ≈ 3e-4 instead of 0
    scheduler.alphas_cumprod = scheduler.alphas_cumprod.to(torch.float64)
    scheduler.set_timesteps(10)
    first, second = scheduler.timesteps[:2].tolist()
    assert first == 999 and scheduler.alphas_cumprod[first].item() == 0.0
    noise, v, fresh = gaussian(21), gaussian(22), gaussian(23)
    theirs = scheduler.step(v, first, noise, eta=eta, variance_noise=fresh).prev_sample

    x0_hat = prediction.x0_from_prediction("v", "vp", noise, v, *vp(0.0))
    sigma_next = conversions.sigma_from_alphas_cumprod(scheduler.alphas_cumprod[second]).item()
    ours_ve = first_step.ancestral_step_from_snr_zero(x0_hat, noise, fresh, sigma_next, eta=eta)
    ours = ours_ve / math.hypot(1.0, sigma_next)  # the VP sample x_t = x/sqrt(1+sigma²)
    torch.testing.assert_close(ours, theirs, rtol=1e-7, atol=1e-7)
