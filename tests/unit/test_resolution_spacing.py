"""logsnr_resolution: the resolution shift of the image mean's SNR, and the spacing built on it."""

from __future__ import annotations

import math

import pytest
import torch
from zsnr_core.schedules import betas, conversions, logsnr_spacing, spacing

SIZES = [(1, 1), (8, 8), (16, 16), (32, 32), (48, 64), (64, 64), (96, 96), (128, 128), (192, 256), (256, 256),
         (1024, 1024)]


def rescaled_sd_log_snr() -> torch.Tensor:
    # paper Algorithm 1 on SD's scaled_linear schedule, independent of logsnr_spacing.py
    alphas_cumprod = betas.alphas_cumprod_from_betas(betas.make_betas("scaled_linear", 1000))
    return conversions.log_snr_from_alphas_cumprod(betas.rescale_alphas_cumprod_zero_terminal_snr(alphas_cumprod))


def test_shift_is_the_measured_move_of_the_image_mean_snr():
    # First principles, measured: the noise of the mean over N positions of unit-variance noise
    # has variance v(N); the pixel log-SNR at which the mean of a unit-variance signal reaches
    # SNR 1 is log v(N). Its move from N_ref = 64x64 to N is the shift (down for larger images).
    generator = torch.Generator().manual_seed(0)
    draws = 4000

    def mean_noise_variance(height, width):
        return float(torch.randn(draws, height * width, generator=generator, dtype=torch.float64).mean(1).var())

    reference = math.log(mean_noise_variance(64, 64))
    for height, width in ((16, 16), (32, 32), (32, 64), (128, 128), (128, 96)):
        measured = reference - math.log(mean_noise_variance(height, width))
        # a variance estimate from 4000 draws has relative error sqrt(2/4000) ≈ 2.2 %: 5 sigma in log
        assert abs(logsnr_spacing.resolution_log_snr_shift((height, width)) - measured) < 2 * 5 * math.sqrt(2 / draws)


def test_shift_is_simple_diffusions_for_square_images_and_zero_at_the_reference():
    # Hoogeboom et al. 2023: log-SNR shifted by 2 log(64/d) for a d x d image, i.e. the window
    # moves down by 2 log(d/64)
    for side in (8, 32, 64, 100, 128, 256):
        assert logsnr_spacing.resolution_log_snr_shift((side, side)) == pytest.approx(2 * math.log(side / 64), abs=1e-12)
    assert logsnr_spacing.resolution_log_snr_shift(None) == 0.0
    assert logsnr_spacing.resolution_log_snr_shift((64, 64)) == 0.0
    assert logsnr_spacing.resolution_log_snr_shift((32, 128)) == pytest.approx(0.0, abs=1e-12)  # same N


@pytest.mark.parametrize("num_train_timesteps", [1000, 1100, 50])
def test_at_the_reference_size_it_is_logsnr_uniform(num_train_timesteps):
    for steps in range(1, num_train_timesteps + 1):
        uniform = spacing.select_timesteps("logsnr_uniform", steps, num_train_timesteps)
        for size in (None, (64, 64), (32, 128)):
            assert torch.equal(spacing.select_timesteps("logsnr_resolution", steps, num_train_timesteps,
                                                        latent_size=size), uniform), (steps, size)


@pytest.mark.parametrize("size", SIZES)
def test_every_step_count_gives_strictly_decreasing_integers_from_the_terminal_to_zero(size):
    for steps in range(1, 1001):
        timesteps = spacing.select_timesteps("logsnr_resolution", steps, 1000, latent_size=size)
        assert len(timesteps) == steps and timesteps[0] == 999, (size, steps)
        assert torch.equal(timesteps, timesteps.round())
        assert (timesteps[1:] < timesteps[:-1]).all() and timesteps.min() >= 0, (size, steps)
        if steps >= 3:
            assert timesteps[-1] == 0, (size, steps)  # every size ends at the least noisy timestep


def test_larger_images_get_noisier_timesteps():
    # monotonic in the size: no timestep moves towards less noise when the latent grows
    for steps in (2, 3, 5, 10, 25, 50, 200):
        previous = None
        for size in SIZES:
            timesteps = spacing.select_timesteps("logsnr_resolution", steps, 1000, latent_size=size)
            if previous is not None:
                assert (timesteps >= previous).all(), (steps, size)
            previous = timesteps
    small = spacing.select_timesteps("logsnr_resolution", 10, 1000, latent_size=(32, 32))
    large = spacing.select_timesteps("logsnr_resolution", 10, 1000, latent_size=(128, 128))
    assert (large[1:-1] > small[1:-1]).any()


@pytest.mark.parametrize("size", [(8, 8), (16, 16), (32, 32), (96, 96), (128, 128), (256, 256)])
def test_window_is_shifted_at_the_low_snr_end_and_uniform(size):
    # The rule in words, from the betas: T-1, then points uniform in log-SNR from
    # log-SNR(T-2) - log(N/4096) to log-SNR(0), a point below log-SNR(T-2) taken at T-2, each at
    # its nearest timestep
    log_snr = rescaled_sd_log_snr()[:999]
    shift = math.log(size[0] * size[1] / 4096)
    steps = 12
    timesteps = spacing.select_timesteps("logsnr_resolution", steps, 1000, latent_size=size).long().tolist()
    targets = torch.linspace(float(log_snr[998]) - shift, float(log_snr[0]), steps - 1, dtype=torch.float64)
    for timestep, target in zip(timesteps[1:], targets.clamp(min=float(log_snr[998])), strict=True):
        nearest = int((log_snr - target).abs().argmin())
        assert abs(nearest - timestep) <= 1, (size, timestep, nearest)
    if shift >= 0:
        assert timesteps[1] == 998  # the first step from SNR 0 lands on the lowest finite SNR
    else:
        assert timesteps[1] < 998 and abs(float(log_snr[timesteps[1]]) - (float(log_snr[998]) - shift)) < 0.5


@pytest.mark.parametrize("size", [(16, 16), (64, 64), (128, 128)])
def test_sigmas_are_valid_for_a_zero_snr_table(size):
    rescaled = betas.rescale_alphas_cumprod_zero_terminal_snr(
        betas.alphas_cumprod_from_betas(betas.make_betas("scaled_linear")))
    table = conversions.sigma_from_alphas_cumprod(betas.clamp_terminal(rescaled, 4.8973451890853435e-08))
    for steps in (1, 2, 3, 5, 10, 25, 100, 1000):
        sigmas = spacing.spacing_sigmas("logsnr_resolution", steps, table, latent_size=size)
        assert sigmas.shape == (steps + 1,) and torch.isfinite(sigmas).all() and sigmas[-1] == 0
        assert (sigmas[1:] < sigmas[:-1]).all() and sigmas[0] == table[-1].float()


@pytest.mark.parametrize("name", spacing.SPACINGS)
def test_exactly_the_size_aware_spacings_read_the_latent_size(name):
    """SIZE_AWARE_SPACINGS is what the plot node and the preview route tell the frontend; a rule
    that reads latent_size without being listed (or the reverse) would draw the wrong header."""
    reads = any(not torch.equal(spacing.select_timesteps(name, steps, 1000, latent_size=size),
                                spacing.select_timesteps(name, steps, 1000))
                for steps in (5, 10, 25) for size in ((32, 32), (128, 128), (128, 96)))
    assert reads is (name in spacing.SIZE_AWARE_SPACINGS)


@pytest.mark.parametrize("bad", [(0, 64), (64, -1), (64.5, 64), "64x64", (64,), (True, 64), (64, 64, 64)])
def test_bad_latent_sizes_name_the_input(bad):
    with pytest.raises(ValueError, match="'latent_size'"):
        spacing.select_timesteps("logsnr_resolution", 10, 1000, latent_size=bad)
