"""Paper Table 1 schedules and Algorithm 1, checked against the paper and diffusers."""

from __future__ import annotations

import pytest
import torch
from diffusers import DDIMScheduler
from diffusers.schedulers.scheduling_ddim import rescale_zero_terminal_snr as diffusers_rescale
from zsnr_core.schedules import betas

# Paper Table 1: terminal SNR(T) and sqrt(alphā_T) at T = 1000. The paper prints
# 4–7 significant digits, so rtol 1e-4 (a float64 recomputation agrees with the printed table to ~1e-5).
TABLE_1 = {
    "linear": (4.035993e-05, 0.006353),
    "cosine": (2.428735e-09, 4.928220e-05),
    "scaled_linear": (0.004682, 0.068265),
}
PUBLISHED = tuple(TABLE_1)
# diffusers builds SD's betas in float32 and cumprods 1000 float32 factors: its alphā carries a
# relative error up to about T·eps32 = 1000 · 1.19e-7.
FLOAT32_CUMPROD_RTOL = 1000 * torch.finfo(torch.float32).eps


def alphas_cumprod(name: str) -> torch.Tensor:
    return betas.alphas_cumprod_from_betas(betas.make_betas(name))


@pytest.mark.parametrize("name", PUBLISHED)
def test_table_1_terminal_snr_and_signal(name):
    expected_snr, expected_root = TABLE_1[name]
    terminal = alphas_cumprod(name)[-1]
    assert (terminal / (1 - terminal)).item() == pytest.approx(expected_snr, rel=1e-4)
    assert terminal.sqrt().item() == pytest.approx(expected_root, rel=1e-4)


@pytest.mark.parametrize("name", PUBLISHED)
def test_algorithm_1_invariants(name):
    original = alphas_cumprod(name)
    rescaled_betas = betas.rescale_zero_terminal_snr(betas.make_betas(name))
    rescaled = betas.alphas_cumprod_from_betas(rescaled_betas)
    assert rescaled[-1].item() == 0.0  # exactly, not merely small
    assert rescaled_betas[-1].item() == 1.0
    assert rescaled[0].item() == pytest.approx(original[0].item(), rel=1e-14)
    assert (rescaled[1:] < rescaled[:-1]).all()
    assert (rescaled_betas >= 0).all() and (rescaled_betas <= 1).all()


@pytest.mark.parametrize("name", PUBLISHED)
def test_algorithm_1_is_idempotent(name):
    once = betas.rescale_alphas_cumprod_zero_terminal_snr(alphas_cumprod(name))
    twice = betas.rescale_alphas_cumprod_zero_terminal_snr(once)
    torch.testing.assert_close(twice, once, rtol=1e-14, atol=0)


def test_unclipped_cosine_reaches_zero_terminal_snr_without_rescaling():
    # paper §3.1: the cosine schedule only needs its beta clip removed
    unclipped = alphas_cumprod("cosine_unclipped")
    assert unclipped[-1].item() == 0.0
    assert (unclipped[1:] < unclipped[:-1]).all()
    assert alphas_cumprod("cosine")[-1].item() > 0.0


@pytest.mark.parametrize("name", PUBLISHED)
def test_rescale_matches_diffusers_in_float64(name):
    schedule = betas.make_betas(name)
    theirs = diffusers_rescale(schedule.clone())
    torch.testing.assert_close(betas.rescale_zero_terminal_snr(schedule), theirs, rtol=0, atol=1e-12)


def test_zero_snr_sd_schedule_matches_diffusers_ddim_scheduler():
    scheduler = DDIMScheduler(
        num_train_timesteps=1000,
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        rescale_betas_zero_snr=True,
    )
    ours = betas.alphas_cumprod_from_betas(betas.rescale_zero_terminal_snr(betas.make_betas("scaled_linear")))
    theirs = scheduler.alphas_cumprod.to(torch.float64)
    assert theirs[-1].item() == 0.0 and ours[-1].item() == 0.0
    torch.testing.assert_close(ours, theirs, rtol=FLOAT32_CUMPROD_RTOL, atol=0)


def test_sd_schedule_matches_diffusers_scaled_linear_without_rescale():
    scheduler = DDIMScheduler(
        num_train_timesteps=1000, beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear"
    )
    torch.testing.assert_close(
        alphas_cumprod("scaled_linear"),
        scheduler.alphas_cumprod.to(torch.float64),
        rtol=FLOAT32_CUMPROD_RTOL,
        atol=0,
    )


def test_clamp_terminal_replaces_only_the_last_entry():
    rescaled = betas.rescale_alphas_cumprod_zero_terminal_snr(alphas_cumprod("scaled_linear"))
    clamped = betas.clamp_terminal(rescaled, 2.0**-24)
    assert clamped[-1].item() == 2.0**-24
    assert torch.equal(clamped[:-1], rescaled[:-1])


def test_unknown_schedule_lists_valid_names():
    with pytest.raises(ValueError, match="scaled_linear"):
        betas.make_betas("quadratic")
