"""Brightness-recovery metrics (reference/metrics.py, the one module the demo, the benchmarks and
the tests score with) against first principles."""
from __future__ import annotations

import math

import pytest
import torch
from zsnr_core.reference import datasets, metrics


def test_w1_of_equal_size_samples_is_the_mean_gap_of_sorted_values():
    # for two samples of the same size n, the optimal 1-D coupling pairs the order statistics:
    # W1 = (1/n) Σ |a_(i) - b_(i)| (the quantile functions are step functions on the same grid)
    generator = torch.Generator().manual_seed(1)
    a, b = torch.randn(300, generator=generator, dtype=torch.float64), torch.rand(300, generator=generator)
    expected = (a.sort().values - b.double().sort().values).abs().mean()
    assert metrics.wasserstein1(a, b) == pytest.approx(float(expected), rel=1e-12)


def test_w1_of_unequal_sizes_is_that_of_equal_size_copies():
    # an empirical distribution is unchanged when every point is repeated k times, so samples of
    # sizes 64 and 200 (the demo's seeds against the data) are those of two samples of size
    # lcm = 1600, whose W1 is the mean gap of the sorted values (test above)
    generator = torch.Generator().manual_seed(5)
    a, b = torch.randn(64, generator=generator, dtype=torch.float64), torch.rand(200, generator=generator, dtype=torch.float64)
    expected = (a.repeat_interleave(25).sort().values - b.repeat_interleave(8).sort().values).abs().mean()
    assert metrics.wasserstein1(a, b) == pytest.approx(float(expected), rel=1e-12)


def test_w1_of_two_small_known_distributions():
    # F_a steps 1/3, 2/3, 1 at 0, 1, 2; F_b steps 1/2, 1 at 0, 2: |F_a - F_b| = 1/6 on [0, 1) and
    # 1/6 on [1, 2), so W1 = 1/3
    assert metrics.wasserstein1([0.0, 1.0, 2.0], [0.0, 2.0]) == pytest.approx(1 / 3, rel=1e-12)


def test_w1_to_a_point_mass_is_the_mean_distance_to_it():
    # transporting every sample to a single point costs the mean distance: sizes may differ
    values = torch.tensor([-1.5, 0.25, 2.0, 3.0, 0.0], dtype=torch.float64)
    assert metrics.wasserstein1(values, torch.full((3,), 0.5)) == pytest.approx(float((values - 0.5).abs().mean()))


def test_w1_of_a_shift_is_the_shift_and_is_symmetric():
    values = torch.linspace(-0.9, 0.9, 200, dtype=torch.float64)
    assert metrics.wasserstein1(values + 0.3, values) == pytest.approx(0.3, rel=1e-12)
    shorter = values[::3]
    assert metrics.wasserstein1(shorter, values) == pytest.approx(metrics.wasserstein1(values, shorter), rel=1e-12)
    assert metrics.wasserstein1(values, values) == 0.0


def test_normalised_w1_and_spread_ratio_are_scale_free():
    generator = torch.Generator().manual_seed(2)
    data = torch.rand(200, generator=generator, dtype=torch.float64)
    generated = 0.6 * data + 0.1  # a grey sampler: same shape, 60 % of the spread
    assert metrics.spread_ratio(generated, data) == pytest.approx(0.6, rel=1e-12)
    # scaling both by 5 changes neither figure
    assert metrics.normalised_wasserstein1(5 * generated, 5 * data) == pytest.approx(
        metrics.normalised_wasserstein1(generated, data), rel=1e-12)
    assert metrics.spread_ratio(-generated, data) == pytest.approx(0.6, rel=1e-12)


def test_spread_ratio_uses_the_population_std():
    # linspace(-L, L, n) has population variance L^2 (n + 1) / (3 (n - 1)) (the mean of k^2 over an
    # evenly spaced grid); {-a, +a} has population std a (its unbiased std would be a * sqrt(2))
    n, half_range, a = 200, 0.9, 0.4
    data = torch.linspace(-half_range, half_range, n, dtype=torch.float64)
    expected = a / (half_range * math.sqrt((n + 1) / (3 * (n - 1))))
    assert metrics.spread_ratio([-a, a], data) == pytest.approx(expected, rel=1e-12)
    # the same empirical distribution scores r = 1 and W1 = 0 whatever the seed count
    twice = torch.cat([data, data])
    assert metrics.spread_ratio(twice, data) == pytest.approx(1.0, rel=1e-12)
    assert metrics.normalised_wasserstein1(twice, data) == pytest.approx(0.0, abs=1e-15)


def test_pixel_brightness_is_the_latent_mean_of_decoded_images():
    # latent = 2 * pixel - 1 (reference/datasets.py), and the mean is linear
    images = [torch.full((4, 4, 3), 0.25), torch.tensor([[0.0, 1.0], [1.0, 0.0]])]
    assert metrics.pixel_brightness(images).tolist() == pytest.approx([-0.5, 0.0], abs=1e-15)
    latents = datasets.render_dataset("brightness_ramp", 8, 8)
    pixels = ((latents.double() + 1) / 2).permute(0, 2, 3, 1)  # [N, H, W, 3], as decode_png returns
    torch.testing.assert_close(metrics.pixel_brightness(pixels), datasets.mean_brightness(latents), rtol=0, atol=1e-12)


def test_extreme_fraction_counts_samples_beyond_the_linear_quantiles():
    # data 0..99: the 2.5 % quantile with linear interpolation sits at position 0.025 * 99 = 2.475
    # between the order statistics, the 97.5 % one at 96.525; values on the far side are extreme
    data = torch.arange(100, dtype=torch.float64)
    generated = [2.4, 2.5, 50.0, 96.5, 96.6, -3.0, 120.0, 10.0]
    assert metrics.extreme_fraction(generated, data) == pytest.approx(4 / 8)
    # a tail of 10 %: quantiles at 9.9 and 89.1, so 10.0 stays inside and 50.0 too
    assert metrics.extreme_fraction(generated, data, tail=0.1) == pytest.approx(6 / 8)


def test_clipped_fraction_pools_the_pixels_of_all_images():
    # 8-bit codes 0 and 255 are clipped, 1 and 254 are not; pooled: 3 of 5 values, not the mean of
    # the per-image fractions (1 and 1/2)
    codes = [torch.tensor([[0.0]]), torch.tensor([255.0, 1.0, 254.0, 0.0])]
    assert metrics.clipped_fraction([code / 255 for code in codes]) == pytest.approx(3 / 5)


def test_brightness_error_is_the_distance_of_the_mean_to_the_target():
    assert metrics.brightness_error([0.1, 0.3, -0.1], 0.5) == pytest.approx(0.4)
    assert metrics.brightness_error([0.1, 0.3, -0.1], -0.4) == pytest.approx(0.5)


def test_noise_floor_shrinks_as_one_over_root_count():
    # the empirical-measure W1 of a bounded 1-D distribution decays as n^(-1/2) (del Barrio, Giné
    # and Matrán 1999), so 4x the seeds halves the floor; r's sampling error halves likewise (CLT)
    data = torch.linspace(-0.9, 0.9, 200, dtype=torch.float64)
    small, large = metrics.noise_floor(data, 64, draws=2000), metrics.noise_floor(data, 256, draws=2000)
    assert large["w1"] / small["w1"] == pytest.approx(0.5, rel=0.1)
    assert large["r_std"] / small["r_std"] == pytest.approx(0.5, rel=0.15)
    assert small["w1"] < small["w1_q95"] and small["r_q025"] < 1 < small["r_q975"]
    assert metrics.noise_floor(data, 64, draws=200, seed=3) == metrics.noise_floor(data, 64, draws=200, seed=3)


def test_noise_floor_of_a_mean_over_groups_keeps_the_mean_and_narrows():
    # averaging the W1 of 4 independent batches leaves its expectation alone and shrinks its
    # spread (so its 95th percentile moves towards the mean); r then uses all 4 x 64 values
    data = torch.linspace(-0.9, 0.9, 200, dtype=torch.float64)
    single, grouped = metrics.noise_floor(data, 64, draws=1000), metrics.noise_floor(data, 64, draws=1000, groups=4)
    assert grouped["w1"] == pytest.approx(single["w1"], rel=0.05)
    assert grouped["w1_q95"] - grouped["w1"] < 0.7 * (single["w1_q95"] - single["w1"])
    assert grouped["r_std"] == pytest.approx(single["r_std"] / 2, rel=0.15)  # 4x the values: CLT


def test_bad_inputs_are_refused():
    good = torch.linspace(0, 1, 10)
    with pytest.raises(ValueError, match="'generated' has non-finite"):
        metrics.spread_ratio(torch.tensor([0.0, float("nan")]), good)
    with pytest.raises(ValueError, match="'a' has 1 values"):
        metrics.wasserstein1(torch.tensor([1.0]), good)
    with pytest.raises(ValueError, match="'count' = 1"):
        metrics.noise_floor(good, 1)
    with pytest.raises(ValueError, match="'tail' = 0.5"):
        metrics.extreme_fraction(good, good, tail=0.5)


def test_nearest_image_rms_is_zero_on_memorised_images_and_measures_blends():
    generator = torch.Generator().manual_seed(4)
    images = torch.rand(5, 3, 4, 4, generator=generator, dtype=torch.float64) * 2 - 1
    assert torch.allclose(metrics.nearest_image_rms(images[[3, 0]], images), torch.zeros(2, dtype=torch.float64), atol=1e-6)
    # a sample at distance 0.1 from image 2 in every pixel, and far from the others
    shifted = images[2:3] + 0.1
    brute = min(float(((shifted - image) ** 2).mean().sqrt()) for image in images)
    assert metrics.nearest_image_rms(shifted, images).item() == pytest.approx(brute, rel=1e-9)


def test_chroma_is_max_minus_min_over_the_colour_channels():
    grey = torch.full((2, 3, 4, 4), 0.3, dtype=torch.float64)
    assert metrics.chroma(grey) == 0.0
    red = torch.zeros(1, 3, 2, 2, dtype=torch.float64)
    red[:, 0] = 1.0
    assert metrics.chroma(red) == 1.0
    half = torch.cat([grey[:1, :, :2, :2], red])  # one grey and one pure image: the mean over pixels
    assert metrics.chroma(half) == 0.5
    assert metrics.chroma(red.permute(0, 2, 3, 1), channel_dim=-1) == 1.0
