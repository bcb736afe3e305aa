"""Plot data (schedules/plot_data.py): the curves, marked steps and SNR-0 end the plot node and the
/zsnr/timesteps route show, checked against the spacing and conversion functions and the paper."""

from __future__ import annotations

import json
import math

import pytest
import torch
from zsnr_core.schedules import betas, conversions, plot_data, spacing

T = 1000
# ComfyUI's zsnr clamp of alphā_T (the host's comfy/model_sampling.py,
# rescale_zero_terminal_snr_sigmas); its sigma ≈ 4518.76 is the finite top entry a host table has on
# an exact zero-terminal-SNR model (the SNR-0 sentinel)
COMFY_ZSNR_ALPHAS_CUMPROD_T = 4.8973451890853435e-08
# diffusers' Euler / DPM-Solver / UniPC schedulers with rescale_betas_zero_snr clamp alphā_T to 2^-24
DIFFUSERS_ALPHAS_CUMPROD_T = 2.0**-24
# paper Table 1: Stable Diffusion's terminal SNR
SD_TERMINAL_SNR = 0.004682


def sd_alphas_cumprod() -> torch.Tensor:
    return betas.alphas_cumprod_from_betas(betas.make_betas("scaled_linear"))


def zsnr_alphas_cumprod() -> torch.Tensor:
    return betas.rescale_alphas_cumprod_zero_terminal_snr(sd_alphas_cumprod())


def host_table(alphas_cumprod: torch.Tensor) -> torch.Tensor:
    """A host-style float32 sigma table; alphā = 0 becomes the finite sentinel, as on the host."""
    finite = betas.clamp_terminal(alphas_cumprod, COMFY_ZSNR_ALPHAS_CUMPROD_T) if alphas_cumprod[-1] == 0 \
        else alphas_cumprod
    return conversions.sigma_from_alphas_cumprod(finite).to(torch.float32)


CASES = [(name, steps, denoise, offset) for name in spacing.SPACINGS for steps in (1, 3, 10, 25, 999)
         for denoise, offset in ((1.0, 0), (0.6, 0), (1.0, 1))]


@pytest.mark.parametrize("schedule", [sd_alphas_cumprod, zsnr_alphas_cumprod])
@pytest.mark.parametrize(("name", "steps", "denoise", "offset"), CASES)
def test_selected_timesteps_are_those_behind_the_schedulers_sigmas(schedule, name, steps, denoise, offset):
    table = host_table(schedule())
    if int(steps / denoise) > T:
        with pytest.raises(ValueError, match="denoise"):
            plot_data.selected_timesteps(name, steps, T, denoise, offset)
        return
    timesteps = plot_data.selected_timesteps(name, steps, T, denoise, offset)
    sigmas = spacing.spacing_sigmas(name, steps, table, denoise=denoise, steps_offset=offset)
    assert len(timesteps) == steps == len(sigmas) - 1
    expected = spacing.sigmas_at_timesteps(timesteps, table).to(torch.float32)
    assert torch.equal(expected, sigmas[:-1])


@pytest.mark.parametrize("name", spacing.SPACINGS)
@pytest.mark.parametrize("latent_size", [(64, 64), (128, 128), (96, 160), (16, 16)])
@pytest.mark.parametrize(("steps", "denoise"), [(10, 1.0), (25, 1.0), (8, 0.6)])
def test_selected_timesteps_take_the_latent_size_as_the_spacing_does(name, latent_size, steps, denoise):
    # the live preview's marks (the route's `latent_height` / `latent_width`) are the timesteps the
    # TimestepSpacingScheduler node spaces for that latent: the same rule, given the same size
    timesteps = plot_data.selected_timesteps(name, steps, T, denoise, 0, latent_size)
    total_steps = spacing.full_schedule_steps(steps, denoise, T)
    assert torch.equal(timesteps, spacing.select_timesteps(name, total_steps, T, 0, latent_size)[-steps:])
    table = host_table(zsnr_alphas_cumprod())
    sigmas = spacing.spacing_sigmas(name, steps, table, denoise=denoise, latent_size=latent_size)
    assert torch.equal(spacing.sigmas_at_timesteps(timesteps, table).to(torch.float32), sigmas[:-1])


def test_only_logsnr_resolution_moves_with_the_latent_size():
    for name in spacing.SPACINGS:
        at_reference = plot_data.selected_timesteps(name, 12, T)
        # None is the 64x64 reference size (schedules/logsnr_spacing.py, REFERENCE_LATENT_SIZE)
        assert torch.equal(plot_data.selected_timesteps(name, 12, T, latent_size=(64, 64)), at_reference)
        larger = plot_data.selected_timesteps(name, 12, T, latent_size=(128, 128))
        if name == "logsnr_resolution":
            # 4x the positions: the window starts log 4 lower in log-SNR, so the steps after the
            # SNR-0 one lie at higher t (more noise), never lower
            assert not torch.equal(larger, at_reference) and larger[0] == at_reference[0] == T - 1
            assert (larger >= at_reference).all()
        else:
            assert torch.equal(larger, at_reference), name


def test_selected_timesteps_refuse_a_bad_latent_size_by_name():
    with pytest.raises(ValueError, match="'latent_size'"):
        plot_data.selected_timesteps("logsnr_resolution", 10, T, latent_size=(0, 64))


@pytest.mark.parametrize("schedule", [sd_alphas_cumprod, zsnr_alphas_cumprod])
@pytest.mark.parametrize("name", spacing.SPACINGS)
def test_sigmas_map_back_to_their_timesteps(schedule, name):
    table = host_table(schedule())
    for steps in (1, 4, 10, 30):
        sigmas = spacing.spacing_sigmas(name, steps, table)
        timesteps = plot_data.timesteps_from_sigmas(sigmas, table)
        expected = spacing.select_timesteps(name, steps, T)
        assert len(timesteps) == steps  # the final 0 is the end of sampling, not a step
        # integer spacings read table entries exactly; sgm_uniform goes through a float32 round trip
        tolerance = 0 if name != "sgm_uniform" else 2e-3
        assert torch.allclose(timesteps, expected, rtol=0, atol=tolerance), (name, steps)


def test_the_snr_zero_sentinel_maps_to_the_last_timestep():
    table = host_table(zsnr_alphas_cumprod())
    timesteps = plot_data.timesteps_from_sigmas(torch.tensor([float(table[-1]), 1.0, 0.0]), table)
    assert timesteps[0] == T - 1 and len(timesteps) == 2


def test_bad_sigmas_are_refused():
    table = host_table(sd_alphas_cumprod())
    with pytest.raises(ValueError, match="'sigmas'"):
        plot_data.timesteps_from_sigmas(torch.tensor([1.0, float("nan"), 0.0]), table)


def test_log_snr_at_timesteps_reads_the_table_and_keeps_snr_zero_exact():
    alphas = zsnr_alphas_cumprod()
    t = torch.tensor([999.0, 500.0, 0.0])
    log_snr = plot_data.log_snr_at_timesteps(alphas, t)
    assert log_snr[0] == -math.inf
    # log-SNR = log(alphā/(1-alphā)) (paper §2), computed here directly
    for i, step in ((1, 500), (2, 0)):
        assert log_snr[i] == pytest.approx(math.log(alphas[step] / (1 - alphas[step])), rel=1e-12)


def test_fractional_timesteps_agree_with_the_hosts_log_sigma_interpolation():
    # spacing.sigmas_at_timesteps interpolates log-sigma like ModelSamplingDiscrete.sigma; sigma =
    # exp(-log-SNR/2), so both interpolations must give the same sigma
    alphas = sd_alphas_cumprod()
    t = torch.tensor([998.5, 420.25, 0.75])
    sigma_from_log_snr = plot_data.axis_values(plot_data.log_snr_at_timesteps(alphas, t), "sigma")
    sigma_table = conversions.sigma_from_alphas_cumprod(alphas)
    assert torch.allclose(sigma_from_log_snr, spacing.sigmas_at_timesteps(t, sigma_table), rtol=1e-12)


def test_axis_values_at_snr_zero_are_exact_not_clipped():
    at_zero = torch.tensor([-math.inf])
    assert plot_data.axis_values(at_zero, "log_snr")[0] == -math.inf
    assert plot_data.axis_values(at_zero, "sqrt_alphas_cumprod")[0] == 0.0
    assert plot_data.axis_values(at_zero, "sigma")[0] == math.inf


@pytest.mark.parametrize("y_axis", plot_data.Y_AXES)
def test_axis_values_match_their_definitions(y_axis):
    alphas = sd_alphas_cumprod()
    log_snr = conversions.log_snr_from_alphas_cumprod(alphas)
    definition = {"log_snr": log_snr, "sqrt_alphas_cumprod": alphas.sqrt(),
                  "sigma": ((1 - alphas) / alphas).sqrt()}[y_axis]
    assert torch.allclose(plot_data.axis_values(log_snr, y_axis), definition, rtol=1e-10)


def test_plot_of_a_rescaled_schedule_shows_both_curves_and_the_snr_zero_end():
    data = plot_data.build_plot_data(zsnr_alphas_cumprod(), "log_snr", spacing.select_timesteps("trailing", 10, T),
                                     sd_alphas_cumprod())
    rescaled, original = data.curves
    assert rescaled.snr_zero_timesteps == [T - 1] and rescaled.y[-1] == -math.inf
    assert torch.isfinite(rescaled.y[:-1]).all()
    assert original.snr_zero_timesteps == [] and torch.isfinite(original.y).all()
    # Algorithm 1 keeps alphā_0 (so the curves start together) and the original ends at SD's
    # terminal SNR of paper Table 1
    assert rescaled.y[0] == pytest.approx(float(original.y[0]), rel=1e-12)
    assert math.exp(original.y[-1]) == pytest.approx(SD_TERMINAL_SNR, rel=1e-3)
    # the rescaled schedule has less signal everywhere after t = 0
    assert (rescaled.y[1:] < original.y[1:]).all()
    # the first trailing step is the SNR-0 step; the rest lie on the rescaled curve
    assert data.marked_timesteps.tolist() == list(range(999, 0, -100))
    assert data.marked_y[0] == -math.inf
    assert torch.equal(data.marked_y[1:], rescaled.y[data.marked_timesteps[1:].long()])


def test_plot_of_a_plain_schedule_has_one_finite_curve():
    data = plot_data.build_plot_data(sd_alphas_cumprod(), "log_snr", spacing.select_timesteps("leading", 10, T))
    assert len(data.curves) == 1 and data.curves[0].snr_zero_timesteps == []
    assert torch.isfinite(data.marked_y).all()


@pytest.mark.parametrize("y_axis", plot_data.Y_AXES)
def test_ranges_and_ticks_cover_every_finite_value(y_axis):
    data = plot_data.build_plot_data(zsnr_alphas_cumprod(), y_axis, spacing.select_timesteps("trailing", 7, T),
                                     sd_alphas_cumprod())
    low, high = data.y_range
    values = torch.cat([c.y for c in data.curves] + [data.marked_y])
    finite = values[torch.isfinite(values)]
    assert low < float(finite.min()) and float(finite.max()) < high
    assert len(data.y_ticks) >= 3 and all(low <= p <= high for p, _ in data.y_ticks)
    assert data.x_range == (0.0, T - 1.0) and data.x_ticks[0] == 0.0
    if y_axis == "sigma":  # plotted as log10(sigma): decade ticks labelled with sigma itself
        assert [label for _, label in data.y_ticks][:3] == ["0.1", "1", "10"]
    assert data.snr_zero_label.startswith("SNR = 0")


def test_nice_ticks_are_round_and_cover_the_range():
    assert plot_data.nice_ticks(0, 999) == [0, 200, 400, 600, 800]
    assert plot_data.nice_ticks(-17.8, 7.4) == [-15, -10, -5, 0, 5]
    ticks = plot_data.nice_ticks(0.0, 1.06)
    assert ticks[0] == 0 and ticks[-1] == 1.0
    with pytest.raises(ValueError):
        plot_data.nice_ticks(1.0, 1.0)
    with pytest.raises(ValueError):
        plot_data.nice_ticks(0.0, math.inf)


def test_unknown_y_axis_is_refused_with_the_choices():
    with pytest.raises(ValueError, match="'y_axis' = 'snr'.*log_snr, sqrt_alphas_cumprod, sigma"):
        plot_data.build_plot_data(sd_alphas_cumprod(), "snr", torch.tensor([999.0]))


def test_json_number_drops_infinities():
    assert plot_data.json_number(1.5) == 1.5
    assert plot_data.json_number(-math.inf) is None and plot_data.json_number(math.nan) is None


def test_preview_series_sends_exact_snr_zero_as_null():
    timesteps = spacing.select_timesteps("trailing", 10, T)
    series = plot_data.preview_series(zsnr_alphas_cumprod(), timesteps, sd_alphas_cumprod())
    json.dumps(series, allow_nan=False)  # JSON has no infinity: the answer must hold none
    assert series["log_snr"][0] is None and series["snr_zero"] == [True] + [False] * 9
    assert series["log_snr_curve"][-1] is None
    assert all(v is not None for v in series["log_snr_curve"][:-1] + series["original_log_snr_curve"])
    alphas = zsnr_alphas_cumprod()
    for i, t in enumerate(timesteps.long().tolist()[1:], start=1):  # log-SNR = log(alphā/(1-alphā)), paper §2
        assert series["log_snr"][i] == pytest.approx(math.log(alphas[t] / (1 - alphas[t])), rel=1e-12)
    # the original curve ends at SD's terminal SNR (paper Table 1)
    assert math.exp(series["original_log_snr_curve"][-1]) == pytest.approx(SD_TERMINAL_SNR, rel=1e-3)


@pytest.mark.parametrize(("terminal_alphas_cumprod", "terminal_sigma"), [
    # sigma = sqrt((1-alphā)/alphā): the host's clamp is its sentinel 4518.76 (README), diffusers'
    # 2^-24 gives sqrt(2^24 - 1), just below 4096
    (COMFY_ZSNR_ALPHAS_CUMPROD_T, 4518.76),
    (DIFFUSERS_ALPHAS_CUMPROD_T, math.sqrt(2.0**24 - 1)),
], ids=["clamp_comfy", "clamp_diffusers"])
def test_preview_series_draws_a_clamped_top_at_its_finite_log_snr(terminal_alphas_cumprod, terminal_sigma):
    clamped = betas.clamp_terminal(zsnr_alphas_cumprod(), terminal_alphas_cumprod)
    series = plot_data.preview_series(clamped, spacing.select_timesteps("trailing", 10, T), sd_alphas_cumprod())
    json.dumps(series, allow_nan=False)
    top = math.log(terminal_alphas_cumprod / (1 - terminal_alphas_cumprod))  # paper §2: SNR = alphā/(1-alphā)
    assert series["log_snr_curve"][-1] == pytest.approx(top, rel=1e-12)
    assert series["log_snr"][0] == pytest.approx(top, rel=1e-12)  # the first trailing step is t = 999
    assert series["snr_zero"] == [False] * 10
    # the same number from the sigma side: SNR = 1/sigma^2, so log-SNR = -2 log sigma
    assert top == pytest.approx(-2 * math.log(terminal_sigma), rel=1e-6)
    # below t = 999 the clamp changes nothing: the rescaled schedule of Algorithm 1
    exact = plot_data.preview_series(zsnr_alphas_cumprod(), torch.tensor([0.0]))
    assert series["log_snr_curve"][:-1] == exact["log_snr_curve"][:-1]


def test_preview_series_of_a_schedule_not_rescaled_has_no_original_curve():
    series = plot_data.preview_series(sd_alphas_cumprod(), spacing.select_timesteps("leading", 5, T))
    assert series["original_log_snr_curve"] is None and series["snr_zero"] == [False] * 5
    assert math.exp(series["log_snr_curve"][-1]) == pytest.approx(SD_TERMINAL_SNR, rel=1e-3)
