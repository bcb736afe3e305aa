"""Timestep spacing (paper Table 2) against the paper, diffusers and ComfyUI's own schedulers."""

from __future__ import annotations

import pytest
import torch
from diffusers import DDIMScheduler
from zsnr_core.schedules import betas, conversions, spacing

STEP_COUNTS = range(1, 1001)
# ComfyUI's zsnr clamp of alphā_T (upstream comfy/model_sampling.py, rescale_zero_terminal_snr_sigmas): the finite sentinel sigma_T ≈ 4518.76
COMFY_ZSNR_ALPHAS_CUMPROD_T = 4.8973451890853435e-08


def sd_alphas_cumprod() -> torch.Tensor:
    return betas.alphas_cumprod_from_betas(betas.make_betas("scaled_linear"))


@pytest.fixture(scope="module")
def sd_table() -> torch.Tensor:
    return conversions.sigma_from_alphas_cumprod(sd_alphas_cumprod())


@pytest.fixture(scope="module")
def zero_snr_table() -> torch.Tensor:
    rescaled = betas.rescale_alphas_cumprod_zero_terminal_snr(sd_alphas_cumprod())
    return conversions.sigma_from_alphas_cumprod(betas.clamp_terminal(rescaled, COMFY_ZSNR_ALPHAS_CUMPROD_T))


def ascending(values: torch.Tensor) -> list[int]:
    return sorted(int(t) for t in values)


def test_paper_table_2():
    # paper Table 2, T = 1000, S = 10, 1-indexed; code is 0-indexed, so minus 1
    leading = [t - 1 for t in range(1, 1000, 100)]  # 1 101 201 … 901
    linspace = [t - 1 for t in (1, 112, 223, 334, 445, 556, 667, 778, 889, 1000)]
    trailing = [t - 1 for t in range(100, 1001, 100)]  # 100 200 … 1000
    assert ascending(spacing.select_timesteps("leading", 10, 1000)) == leading
    assert ascending(spacing.select_timesteps("linspace", 10, 1000)) == linspace
    assert ascending(spacing.select_timesteps("trailing", 10, 1000)) == trailing


@pytest.mark.parametrize("num_train_timesteps", [1000, 1100])
def test_trailing_and_linspace_match_diffusers_ddim(num_train_timesteps):
    for name in ("trailing", "linspace"):
        scheduler = DDIMScheduler(num_train_timesteps=num_train_timesteps, timestep_spacing=name)
        for steps in STEP_COUNTS:
            scheduler.set_timesteps(steps)
            theirs = scheduler.timesteps.tolist()
            ours = spacing.select_timesteps(name, steps, num_train_timesteps)
            assert ours.dtype == torch.float64 and len(ours) == steps
            assert ours.long().tolist() == theirs[:steps], (name, steps)
            # diffusers' float arange sometimes yields one extra trailing timestep, -1 (an invalid
            # index); ours stops at S
            assert theirs[steps:] in ([], [-1]), (name, steps)


@pytest.mark.parametrize("num_train_timesteps", [1000, 1100])
@pytest.mark.parametrize("steps_offset", [0, 1])
def test_leading_matches_diffusers_ddim(num_train_timesteps, steps_offset):
    scheduler = DDIMScheduler(
        num_train_timesteps=num_train_timesteps, timestep_spacing="leading", steps_offset=steps_offset
    )
    for steps in STEP_COUNTS:
        scheduler.set_timesteps(steps)
        theirs = scheduler.timesteps.tolist()
        if max(theirs) > num_train_timesteps - 1:
            # diffusers returns an out-of-range timestep here; we refuse instead
            with pytest.raises(ValueError, match="steps_offset"):
                spacing.select_timesteps("leading", steps, num_train_timesteps, steps_offset)
            continue
        assert (
            spacing.select_timesteps("leading", steps, num_train_timesteps, steps_offset).long().tolist()
            == theirs
        )


def test_trailing_rounds_exact_fractions():
    # first principles: trailing t_x = T - 1 - round(x·T/S); away from ties (frac = 1/2, decided by
    # diffusers' float arithmetic) the rounding follows from integer arithmetic alone
    total = 1000
    for steps in STEP_COUNTS:
        ours = spacing.select_timesteps("trailing", steps, total).long().tolist()
        for x, timestep in enumerate(ours):
            whole, remainder = divmod(x * total, steps)
            if 2 * remainder != steps:
                assert timestep == total - 1 - (whole + (2 * remainder > steps)), (steps, x)


@pytest.mark.parametrize("num_train_timesteps", [1000, 1100])
def test_trailing_always_starts_at_the_last_timestep(num_train_timesteps):
    for steps in STEP_COUNTS:
        assert spacing.select_timesteps("trailing", steps, num_train_timesteps)[0] == num_train_timesteps - 1


def test_sgm_uniform_is_uniform_in_t_from_the_last_timestep():
    # ComfyUI normal_scheduler(sgm=True): linspace(T-1, 0, S+1)[:-1], i.e. t_k = (T-1)(1 - k/S)
    total = 1000
    for steps in (1, 2, 3, 7, 10, 33, 999, 1000):
        expected = torch.tensor([(total - 1) * (1 - k / steps) for k in range(steps)], dtype=torch.float64)
        torch.testing.assert_close(
            spacing.select_timesteps("sgm_uniform", steps, total), expected, rtol=1e-14, atol=1e-12
        )


def test_simple_differs_from_trailing_by_truncation_only():
    # ComfyUI's `simple` scheduler (comfy/samplers.py simple_scheduler), written out: it takes
    # table index -(1 + int(x·T/S)), i.e. timestep T-1-int(x·T/S), truncating where trailing rounds
    total = 1000
    for steps in STEP_COUNTS:
        simple = [total - 1 - int(x * (total / steps)) for x in range(steps)]
        trailing = spacing.select_timesteps("trailing", steps, total).long().tolist()
        for x, (by_simple, by_trailing) in enumerate(zip(simple, trailing, strict=True)):
            remainder = (x * total) % steps
            assert by_simple - by_trailing in (0, 1), (steps, x)
            if 0 < 2 * remainder < steps:  # fraction below 1/2: truncating and rounding agree
                assert by_simple == by_trailing, (steps, x)
            if 2 * remainder > steps:  # fraction above 1/2: rounding goes one timestep further
                assert by_simple == by_trailing + 1, (steps, x)
    # measured on the host (upstream comfy/samplers.py, simple_scheduler): simple gives 999, 666, 333 for S = 3
    assert [total - 1 - int(x * (total / 3)) for x in range(3)] == [999, 666, 333]
    assert spacing.select_timesteps("trailing", 3, total).long().tolist() == [999, 666, 332]


def check_scheduler_sigmas(sigmas: torch.Tensor, steps: int, context) -> None:
    assert sigmas.dtype == torch.float32, context
    assert sigmas.shape == (steps + 1,), context
    assert torch.isfinite(sigmas).all(), context
    assert sigmas[-1] == 0, context
    assert (sigmas[1:] < sigmas[:-1]).all(), context


@pytest.mark.parametrize("name", spacing.SPACINGS)
def test_every_step_count_gives_valid_sigmas(name, sd_table, zero_snr_table):
    for table in (sd_table, zero_snr_table):
        for steps in STEP_COUNTS:
            check_scheduler_sigmas(spacing.spacing_sigmas(name, steps, table), steps, (name, steps))


def test_trailing_starts_at_the_sentinel_of_a_zero_snr_table(zero_snr_table):
    sigmas = spacing.spacing_sigmas("trailing", 10, zero_snr_table)
    assert sigmas[0] == zero_snr_table[-1].float()


def test_sigmas_at_integer_timesteps_are_table_entries(sd_table):
    assert torch.equal(spacing.sigmas_at_timesteps(torch.arange(1000), sd_table), sd_table)


def test_fractional_timesteps_interpolate_log_sigma(sd_table):
    # halfway in log-sigma is the geometric mean of the neighbours
    middle = spacing.sigmas_at_timesteps(torch.arange(999) + 0.5, sd_table)
    torch.testing.assert_close(middle, (sd_table[:-1] * sd_table[1:]).sqrt(), rtol=1e-13, atol=0)


def test_infinite_top_sigma_gives_inf_not_nan():
    table = conversions.sigma_from_alphas_cumprod(
        betas.rescale_alphas_cumprod_zero_terminal_snr(sd_alphas_cumprod())
    )
    assert torch.isinf(table[-1])
    looked_up = spacing.sigmas_at_timesteps(torch.tensor([998.0, 998.5, 999.0]), table)
    assert looked_up[0] == table[-2] and torch.isinf(looked_up[1:]).all()
    with pytest.raises(ValueError, match="sentinel"):
        spacing.spacing_sigmas("trailing", 10, table)


@pytest.mark.parametrize("name", spacing.SPACINGS)
def test_denoise_keeps_the_tail_of_the_longer_schedule(name, sd_table):
    # BasicScheduler (comfy_extras/nodes_custom_sampler.py): total = int(steps/denoise), keep the
    # last steps+1 sigmas
    for steps, denoise in ((8, 0.5), (3, 0.3), (10, 0.75), (1, 0.01)):
        full = spacing.spacing_sigmas(name, int(steps / denoise), sd_table)
        assert torch.equal(
            spacing.spacing_sigmas(name, steps, sd_table, denoise=denoise), full[-(steps + 1) :]
        )
    assert spacing.spacing_sigmas(name, 8, sd_table, denoise=0.0).numel() == 0
    assert spacing.spacing_sigmas(name, 8, sd_table, denoise=-1.0).numel() == 0


def test_denoise_errors(sd_table):
    with pytest.raises(ValueError, match="denoise"):
        spacing.spacing_sigmas("trailing", 10, sd_table, denoise=1.5)
    with pytest.raises(ValueError, match="denoise"):
        spacing.spacing_sigmas("trailing", 20, sd_table, denoise=0.01)  # 2000 steps > T


def test_bad_names_and_step_counts_are_refused(sd_table):
    with pytest.raises(ValueError, match="'spacing' = 'karras'.*trailing, leading, linspace, sgm_uniform"):
        spacing.select_timesteps("karras", 10)
    for steps in (0, -3, 1001):
        with pytest.raises(ValueError, match="'steps'"):
            spacing.select_timesteps("trailing", steps, 1000)
    with pytest.raises(ValueError, match="'steps' = 2.5"):
        spacing.select_timesteps("trailing", 2.5, 1000)
    with pytest.raises(ValueError, match="steps_offset"):
        spacing.select_timesteps("leading", 1000, 1000, steps_offset=1)
    with pytest.raises(ValueError, match="'steps'"):
        spacing.spacing_sigmas("linspace", 0, sd_table)
    with pytest.raises(ValueError, match="'steps' = 1001"):
        spacing.spacing_sigmas("linspace", 1001, sd_table)
    with pytest.raises(ValueError, match="'spacing'"):
        spacing.spacing_sigmas("karras", 10, sd_table, denoise=0.0)
    with pytest.raises(ValueError, match="increasing"):
        spacing.spacing_sigmas("trailing", 10, sd_table.flip(0))


def rescaled_sd_log_snr() -> torch.Tensor:
    # paper Algorithm 1 on SD's schedule, independent of spacing.py
    rescaled = betas.rescale_alphas_cumprod_zero_terminal_snr(sd_alphas_cumprod())
    return conversions.log_snr_from_alphas_cumprod(rescaled)


def test_logsnr_uniform_at_ten_steps_like_table_2():
    # first principles, the rule in words: T-1 (SNR 0 after the rescale), then 9 points uniform in
    # log-SNR from t = T-2 to t = 0 of the rescaled SD schedule, each at its nearest timestep
    log_snr = rescaled_sd_log_snr()
    timesteps = spacing.select_timesteps("logsnr_uniform", 10, 1000).long().tolist()
    assert timesteps[:2] == [999, 998] and timesteps[-1] == 0
    targets = torch.linspace(float(log_snr[998]), float(log_snr[0]), 9, dtype=torch.float64)
    for timestep, target in zip(timesteps[1:], targets, strict=True):
        # the target lies within half a timestep of the chosen one (log-SNR is monotone in t)
        if 0 < timestep < 998:
            low, high = sorted((float(log_snr[timestep - 1]), float(log_snr[timestep + 1])))
            assert low <= target <= high, (timestep, target)
        nearest = int((log_snr[:999] - target).abs().argmin())
        assert abs(nearest - timestep) <= 1, (timestep, nearest)


def test_logsnr_uniform_gaps_are_equal_where_timesteps_are_fine_enough():
    # rounding to the nearest timestep moves each point by at most half a local log-SNR step, so
    # every gap is the uniform one up to half a step at each end (near t = T-2 one timestep moves
    # log-SNR by ~1.4, which is why the rule cannot be exact there)
    log_snr = rescaled_sd_log_snr()
    timesteps = spacing.select_timesteps("logsnr_uniform", 25, 1000).long()[1:]
    expected_gap = float(log_snr[0] - log_snr[998]) / 23
    half_step = (log_snr[timesteps] - log_snr[(timesteps + 1).clamp(max=998)]).abs() / 2
    half_step = torch.maximum(half_step, (log_snr[timesteps] - log_snr[(timesteps - 1).clamp(min=0)]).abs() / 2)
    for index in range(len(timesteps) - 1):
        gap = float(log_snr[timesteps[index + 1]] - log_snr[timesteps[index]])
        assert abs(gap - expected_gap) <= float(half_step[index] + half_step[index + 1]) + 1e-9, index


@pytest.mark.parametrize("num_train_timesteps", [1000, 1100, 50])
def test_logsnr_uniform_is_strictly_decreasing_integers_from_the_last_timestep(num_train_timesteps):
    for steps in range(1, num_train_timesteps + 1):
        timesteps = spacing.select_timesteps("logsnr_uniform", steps, num_train_timesteps)
        assert len(timesteps) == steps
        assert timesteps[0] == num_train_timesteps - 1  # contains T-1: starts at the terminal SNR
        assert torch.equal(timesteps, timesteps.round())
        assert (timesteps[1:] < timesteps[:-1]).all() and timesteps.min() >= 0, steps
        if steps >= 2:
            assert timesteps[1] == num_train_timesteps - 2  # the largest finite-SNR timestep
        if steps >= 3:
            assert timesteps[-1] == 0
    everything = spacing.select_timesteps("logsnr_uniform", num_train_timesteps, num_train_timesteps)
    assert everything.long().tolist() == list(range(num_train_timesteps - 1, -1, -1))


def test_logsnr_uniform_never_samples_between_the_last_two_timesteps(zero_snr_table):
    # the host's timestep() interpolates log-sigma (upstream comfy/model_sampling.py): a sigma between sigma(T-2) and the SNR-0 sentinel interpolates to SNR 0
    for steps in range(2, 1001):
        sigmas = spacing.spacing_sigmas("logsnr_uniform", steps, zero_snr_table)
        assert sigmas[0] == zero_snr_table[-1].float() and sigmas[1] == zero_snr_table[-2].float()


def test_a_new_spacing_is_one_rule_and_one_registry_entry(monkeypatch):
    def every_hundredth(steps, num_train_timesteps, steps_offset=0, latent_size=None):
        return torch.arange(num_train_timesteps - 1, -1, -100, dtype=torch.float64)[:steps]

    monkeypatch.setitem(spacing.SPACING_RULES, "every_hundredth", every_hundredth)
    table = torch.linspace(0.1, 50.0, 1000, dtype=torch.float64)
    sigmas = spacing.spacing_sigmas("every_hundredth", 3, table)
    torch.testing.assert_close(sigmas, torch.tensor([50.0, float(table[899]), float(table[799]), 0.0]))
