"""The one SNR-0 notion (schedules/snr_zero.py): the sentinel and the question asked of a sigma."""
from __future__ import annotations

import math

import torch
from zsnr_core.schedules.betas import (
    alphas_cumprod_from_betas,
    make_betas,
    rescale_alphas_cumprod_zero_terminal_snr,
)
from zsnr_core.schedules.conversions import sigma_from_alphas_cumprod
from zsnr_core.schedules.snr_zero import COMFY_CLAMP, SENTINEL_SIGMA, is_snr_zero, sentinel_sigma


def test_sentinel_is_the_hosts_clamp_sigma():
    # sigma = sqrt((1 - alphā)/alphā) of ComfyUI's clamp (upstream rescale_zero_terminal_snr_sigmas)
    assert SENTINEL_SIGMA == math.sqrt((1 - COMFY_CLAMP) / COMFY_CLAMP)
    assert round(SENTINEL_SIGMA, 2) == 4518.76


def test_sentinel_stays_above_the_second_to_last_sigma():
    for name in ("scaled_linear", "linear", "cosine"):
        sigmas = sigma_from_alphas_cumprod(rescale_alphas_cumprod_zero_terminal_snr(
            alphas_cumprod_from_betas(make_betas(name))))
        top = sentinel_sigma(sigmas)
        assert top > float(sigmas[-2]) and math.isfinite(top)


def test_a_float32_rounded_sentinel_is_snr_zero_and_the_step_below_is_not():
    rounded = float(torch.tensor(SENTINEL_SIGMA, dtype=torch.float32))
    assert is_snr_zero(rounded, SENTINEL_SIGMA)
    assert not is_snr_zero(SENTINEL_SIGMA * (1 - 1e-4), SENTINEL_SIGMA)
    mask = is_snr_zero(torch.tensor([SENTINEL_SIGMA, 100.0, math.inf]), SENTINEL_SIGMA)
    assert mask.tolist() == [True, False, True]


def test_without_a_sentinel_only_infinity_is_snr_zero():
    assert is_snr_zero(math.inf, None) and not is_snr_zero(SENTINEL_SIGMA, None)


def test_a_clamp_must_stay_below_the_second_to_last_alphas_cumprod():
    from zsnr_core.schedules.snr_zero import TERMINALS, clamp_fits

    sd = rescale_alphas_cumprod_zero_terminal_snr(alphas_cumprod_from_betas(make_betas("scaled_linear")))
    ddpm = rescale_alphas_cumprod_zero_terminal_snr(alphas_cumprod_from_betas(make_betas("linear")))
    assert float(ddpm[-2]) < COMFY_CLAMP  # ≈ 4.2e-9: the clamped sigma would sit below sigma_{T-2}
    for terminal in TERMINALS:
        assert clamp_fits(sd, terminal)
        assert clamp_fits(ddpm, terminal) == (terminal == "exact")
