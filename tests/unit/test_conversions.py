"""alphā ⇔ SNR ⇔ sigma ⇔ timestep conversions, exact at both ends of the schedule."""

from __future__ import annotations

import math

import pytest
import torch
from zsnr_core.schedules import betas, conversions, spacing


def sd_alphas_cumprod() -> torch.Tensor:
    return betas.alphas_cumprod_from_betas(betas.make_betas("scaled_linear"))


def zero_snr_alphas_cumprod() -> torch.Tensor:
    return betas.rescale_alphas_cumprod_zero_terminal_snr(sd_alphas_cumprod())


def test_sigma_alphas_cumprod_round_trip():
    alphas_cumprod = sd_alphas_cumprod()
    sigma = conversions.sigma_from_alphas_cumprod(alphas_cumprod)
    assert sigma.dtype == torch.float64
    torch.testing.assert_close(
        conversions.alphas_cumprod_from_sigma(sigma), alphas_cumprod, rtol=1e-13, atol=0
    )


def test_sigma_matches_comfyui_definition():
    # ComfyUI ModelSamplingDiscrete._register_schedule: sigmas = ((1 - ā) / ā) ** 0.5. SD's extremes
    # are KarrasScheduler's defaults 14.614642 and 0.0291675, which ComfyUI derives in float32
    # (hence rel 1e-4, not tighter)
    sigma = conversions.sigma_from_alphas_cumprod(sd_alphas_cumprod())
    assert sigma[-1].item() == pytest.approx(14.614642, rel=1e-4)
    assert sigma[0].item() == pytest.approx(0.0291675, rel=1e-4)


def test_zero_snr_end_is_exact_and_nan_free():
    zero = torch.tensor([0.0], dtype=torch.float64)
    assert torch.isposinf(conversions.sigma_from_alphas_cumprod(zero)).all()
    assert conversions.alphas_cumprod_from_sigma(torch.tensor([math.inf])).item() == 0.0
    assert conversions.snr_from_alphas_cumprod(zero).item() == 0.0
    assert torch.isneginf(conversions.log_snr_from_alphas_cumprod(zero)).all()
    root_alpha, root_one_minus = conversions.sqrt_alpha_sigma_pair(zero)
    assert root_alpha.item() == 0.0 and root_one_minus.item() == 1.0


def test_noise_free_end_is_exact():
    one = torch.tensor([1.0], dtype=torch.float64)
    assert conversions.sigma_from_alphas_cumprod(one).item() == 0.0
    assert conversions.alphas_cumprod_from_sigma(torch.zeros(1)).item() == 1.0
    assert torch.isposinf(conversions.snr_from_alphas_cumprod(one)).all()
    assert torch.isposinf(conversions.log_snr_from_alphas_cumprod(one)).all()


def test_whole_zero_snr_schedule_converts_without_nan():
    alphas_cumprod = zero_snr_alphas_cumprod()
    for converted in (
        conversions.sigma_from_alphas_cumprod(alphas_cumprod),
        conversions.snr_from_alphas_cumprod(alphas_cumprod),
        conversions.log_snr_from_alphas_cumprod(alphas_cumprod),
        *conversions.sqrt_alpha_sigma_pair(alphas_cumprod),
    ):
        assert not converted.isnan().any()


def test_snr_forms_agree():
    alphas_cumprod = zero_snr_alphas_cumprod()[:-1]
    snr = conversions.snr_from_alphas_cumprod(alphas_cumprod)
    torch.testing.assert_close(
        conversions.log_snr_from_alphas_cumprod(alphas_cumprod), snr.log(), rtol=1e-12, atol=1e-12
    )
    # SNR = 1/sigma² (VE form)
    sigma = conversions.sigma_from_alphas_cumprod(alphas_cumprod)
    torch.testing.assert_close(snr, sigma**-2, rtol=1e-12, atol=0)


def test_log_snr_keeps_precision_for_tiny_alphas_cumprod():
    # log(ā) - log(1-ā) with ā = 1e-20: 1-ā rounds to 1, and log SNR ≈ log(1e-20) to full precision;
    # a Python float must be taken in float64, not rounded through float32
    assert conversions.log_snr_from_alphas_cumprod(1e-20).item() == pytest.approx(math.log(1e-20), rel=1e-15)


def test_sqrt_pair_is_a_unit_vector():
    root_alpha, root_one_minus = conversions.sqrt_alpha_sigma_pair(zero_snr_alphas_cumprod())
    torch.testing.assert_close(
        root_alpha**2 + root_one_minus**2, torch.ones(1000, dtype=torch.float64), rtol=0, atol=1e-15
    )


def test_timestep_from_sigma_inverts_the_table():
    table = conversions.sigma_from_alphas_cumprod(sd_alphas_cumprod())
    integer = torch.arange(1000, dtype=torch.float64)
    torch.testing.assert_close(conversions.timestep_from_sigma(table, table), integer, rtol=0, atol=1e-9)
    fractional = torch.linspace(0, 999, 2997, dtype=torch.float64)
    sigmas = spacing.sigmas_at_timesteps(fractional, table)
    torch.testing.assert_close(conversions.timestep_from_sigma(sigmas, table), fractional, rtol=0, atol=1e-8)


def test_timestep_from_sigma_clamps_outside_the_table():
    table = conversions.sigma_from_alphas_cumprod(sd_alphas_cumprod())
    outside = torch.tensor([math.inf, 1e6, table[-1].item(), 0.0, table[0].item() / 2], dtype=torch.float64)
    assert conversions.timestep_from_sigma(outside, table).tolist() == [999.0, 999.0, 999.0, 0.0, 0.0]


def test_timestep_from_sigma_on_an_infinite_top_entry():
    table = conversions.sigma_from_alphas_cumprod(zero_snr_alphas_cumprod())
    assert torch.isposinf(table[-1])
    probe = torch.tensor([math.inf, 1e30, table[-2].item(), table[500].item()], dtype=torch.float64)
    timesteps = conversions.timestep_from_sigma(probe, table)
    assert not timesteps.isnan().any()
    # SNR 0 is the last timestep; any finite sigma above sigma_{T-2} sits at the finite end of the
    # last (log-infinite) interval
    assert timesteps.tolist()[:3] == [999.0, 998.0, 998.0]
    assert timesteps[3].item() == pytest.approx(500.0, abs=1e-9)


def test_timestep_from_sigma_accepts_python_floats_and_keeps_shape():
    table = conversions.sigma_from_alphas_cumprod(sd_alphas_cumprod())
    assert conversions.timestep_from_sigma(float(table[10]), table).shape == ()
    batch = table[[5, 6, 7, 8]].reshape(2, 2)
    assert conversions.timestep_from_sigma(batch, table).shape == (2, 2)


def test_vp_pair_refuses_what_is_no_noise_level():
    # moved from the deleted alphā-form helpers: a negative or NaN sigma is no VP timestep
    for bad in (-0.1, math.nan):
        with pytest.raises(ValueError, match="sigma"):
            conversions.vp_pair(torch.tensor([bad]))


def test_vp_pair_does_not_overflow_at_huge_sigma():
    # sqrt(1+σ²) with σ = 1e200 overflows σ² but not hypot: (1/σ, 1) is the exact answer
    signal, noise = conversions.vp_pair(torch.tensor([1e200], dtype=torch.float64))
    assert signal.item() == pytest.approx(1e-200, rel=1e-15) and noise.item() == 1.0


def test_the_one_interpolator_reads_entries_exactly_and_interpolates_in_the_given_line():
    table = torch.tensor([1.0, 4.0, float("inf")], dtype=torch.float64)
    t = torch.tensor([0.0, 0.5, 1.0, 1.5, 2.0], dtype=torch.float64)
    got = conversions.interpolate_at_timesteps(table, t, torch.log, torch.exp)
    assert got.tolist() == [1.0, 2.0, 4.0, float("inf"), float("inf")]  # geometric mean at 0.5
    assert conversions.interpolate_at_timesteps(table, t[:3]).tolist() == [1.0, 2.5, 4.0]  # linear
    assert conversions.interpolate_at_timesteps(table, torch.tensor([-3.0, 9.0]), clamp=True).tolist() == [1.0, float("inf")]
    with pytest.raises(ValueError, match="timesteps"):
        conversions.interpolate_at_timesteps(table, torch.tensor([2.5]))
    with pytest.raises(ValueError, match="1-D"):
        conversions.interpolate_at_timesteps(torch.ones(2, 2), torch.tensor([0.0]))
