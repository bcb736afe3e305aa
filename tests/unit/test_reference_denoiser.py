"""The exact posterior-mean denoiser and the built-in datasets (pure, no ComfyUI)."""
from __future__ import annotations

import math

import pytest
import torch
from zsnr_core.reference import datasets, denoiser


def naive_posterior_mean(noisy, alphas, data, allowed):
    """Bayes' rule written out: explicit squared distances to sqrt(ā) d_i, torch.softmax, float64."""
    noisy, data = noisy.double().flatten(1), data.double().flatten(1)
    rows = []
    for b in range(noisy.shape[0]):
        alpha = float(alphas[b])
        distances = ((noisy[b] - math.sqrt(alpha) * data) ** 2).sum(dim=1)
        logits = -distances / (2 * (1 - alpha))
        logits[~allowed[b]] = float("-inf")
        rows.append(torch.softmax(logits, dim=0) @ data)
    return torch.stack(rows)


@pytest.fixture
def small_data():
    generator = torch.Generator().manual_seed(0)
    data = torch.rand((7, 3, 4, 5), generator=generator, dtype=torch.float64) * 2 - 1
    noisy = torch.randn((6, 3, 4, 5), generator=generator, dtype=torch.float64)
    allowed = torch.rand((6, 7), generator=generator) > 0.4
    allowed[:, 0] = True  # every row keeps at least one image
    return data, noisy, allowed


def test_matches_naive_bayes_per_sample_alpha_and_mask(small_data):
    data, noisy, allowed = small_data
    alphas = torch.tensor([0.9991, 0.9, 0.5, 0.1, 1e-3, 0.0], dtype=torch.float64)
    got = denoiser.posterior_mean_x0(noisy, alphas, data, allowed)
    expected = naive_posterior_mean(noisy, alphas, data, allowed).reshape(got.shape)
    assert got.dtype == torch.float64
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-10)


def test_float32_input_matches_naive(small_data):
    data, noisy, allowed = small_data
    got = denoiser.posterior_mean_x0(noisy.float(), 0.7, data.float())
    everything = torch.ones_like(allowed)
    expected = naive_posterior_mean(noisy.float(), torch.full((6,), 0.7, dtype=torch.float64), data.float(), everything)
    torch.testing.assert_close(got.flatten(1), expected, rtol=0, atol=1e-10)


def test_zero_alpha_gives_exact_mean_and_subset_means(small_data):
    # At ā = 0 the likelihood is flat (paper §5.2): the posterior mean is the (subset) mean.
    data, noisy, allowed = small_data
    got = denoiser.posterior_mean_x0(noisy, 0.0, data)
    torch.testing.assert_close(got, data.mean(dim=0).expand_as(got), rtol=0, atol=1e-12)
    got_subset = denoiser.posterior_mean_x0(noisy, 0.0, data, allowed)
    for b in range(noisy.shape[0]):
        torch.testing.assert_close(got_subset[b], data[allowed[b]].mean(dim=0), rtol=0, atol=1e-12)


def test_tiny_noise_returns_nearest_image(small_data):
    data, _, _ = small_data
    alpha = 1 - 1e-6
    generator = torch.Generator().manual_seed(1)
    picks = torch.tensor([3, 0, 6, 3])
    noisy = math.sqrt(alpha) * data[picks] + math.sqrt(1 - alpha) * torch.randn(
        (4,) + data.shape[1:], generator=generator, dtype=torch.float64)
    got = denoiser.posterior_mean_x0(noisy, alpha, data)
    torch.testing.assert_close(got, data[picks], rtol=0, atol=1e-9)


def test_chunking_does_not_change_the_result(small_data):
    data, noisy, allowed = small_data
    alphas = torch.linspace(0.0, 0.99, noisy.shape[0], dtype=torch.float64)
    whole = denoiser.posterior_mean_x0(noisy, alphas, data, allowed)
    one_row_at_a_time = denoiser.posterior_mean_x0(noisy, alphas, data, allowed, max_chunk_bytes=1)
    assert denoiser.chunk_rows(60, max_chunk_bytes=1) == 1
    torch.testing.assert_close(one_row_at_a_time, whole, rtol=0, atol=1e-12)


def test_bad_inputs_raise(small_data):
    data, noisy, allowed = small_data
    with pytest.raises(ValueError, match="1 - alphā = 0"):
        denoiser.posterior_mean_x0(noisy, 1.0, data)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        denoiser.posterior_mean_x0(noisy, -0.1, data)
    empty = allowed.clone()
    empty[2] = False
    with pytest.raises(ValueError, match="at least one allowed"):
        denoiser.posterior_mean_x0(noisy, 0.5, data, empty)
    with pytest.raises(ValueError, match="differ in image shape"):
        denoiser.posterior_mean_x0(noisy[:, :2], 0.5, data)


def test_eps_and_v_helpers_follow_their_definitions(small_data):
    data, noisy, _ = small_data
    alphas = torch.tensor([0.0, 0.3, 0.6, 0.9, 0.99, 0.9991], dtype=torch.float64)
    x0 = denoiser.posterior_mean_x0(noisy, alphas, data)
    eps = denoiser.eps_from_x0(noisy, alphas, x0)
    v = denoiser.v_from_x0(noisy, alphas, x0)
    a = alphas.view(-1, 1, 1, 1)
    # DDPM eq. 4 must hold with the recovered eps, and v = sqrt(ā) eps - sqrt(1-ā) x0 by definition.
    torch.testing.assert_close(a.sqrt() * x0 + (1 - a).sqrt() * eps, noisy, rtol=0, atol=1e-12)
    torch.testing.assert_close(v, a.sqrt() * eps - (1 - a).sqrt() * x0, rtol=0, atol=1e-12)
    # Paper §6: at SNR 0, x0 = -v exactly and eps = x_t exactly.
    assert torch.equal(v[0], -x0[0])
    assert torch.equal(eps[0], noisy[0])


def test_trained_schedules_and_timestep_lookup():
    zsnr = denoiser.trained_alphas_cumprod("scaled_linear_zsnr")
    plain = denoiser.trained_alphas_cumprod("scaled_linear")
    # Algorithm 1: alphā_T = 0 exactly, alphā_0 unchanged (paper §3.1).
    assert zsnr[-1].item() == 0.0
    assert zsnr[0].item() == pytest.approx(plain[0].item(), rel=1e-12)
    # Table 1: sqrt(alphā_T) of the SD schedule is 0.068265 (rtol 1e-4: the paper prints 5 digits).
    assert plain[-1].sqrt().item() == pytest.approx(0.068265, rel=1e-4)
    steps = torch.tensor([0.0, 17.0, 500.0, 999.0])
    assert torch.equal(denoiser.alphas_cumprod_at(zsnr, steps), zsnr[[0, 17, 500, 999]])
    # Fractional t: linear in log sigma between neighbours, the host's ModelSamplingDiscrete.sigma.
    sigmas = ((1 - plain) / plain).sqrt()
    t, low, w = 412.25, 412, 0.25
    sigma = math.exp((1 - w) * math.log(sigmas[low]) + w * math.log(sigmas[low + 1]))
    got = denoiser.alphas_cumprod_at(plain, torch.tensor([t]))
    assert got.item() == pytest.approx(1 / (1 + sigma**2), rel=1e-12)
    # Between the last two steps of a ZTSNR schedule the log-SNR interpolates to -inf: alphā = 0.
    assert denoiser.alphas_cumprod_at(zsnr, torch.tensor([998.5, 1500.0])).tolist() == [0.0, 0.0]
    with pytest.raises(ValueError, match="scaled_linear_zsnr"):
        denoiser.trained_alphas_cumprod("nope")


def test_datasets_are_deterministic_and_in_range():
    for name in datasets.DATASETS:
        first = datasets.render_dataset(name, 24, 20)
        assert first.shape == (datasets.DATASET_SIZE, 3, 24, 20)
        assert first.dtype == torch.float32
        assert torch.equal(first, datasets.render_dataset(name, 24, 20))
        assert first.min() >= -1 and first.max() <= 1
    with pytest.raises(ValueError, match="brightness_ramp, colour_blobs"):
        datasets.render_dataset("nope", 8, 8)


@pytest.mark.parametrize("name", datasets.DATASETS)
def test_datasets_do_not_depend_on_resolution(name):
    # Procedural images sampled on two grids: same per-image brightness up to sampling error.
    small = datasets.mean_brightness(datasets.render_dataset(name, 64, 64))
    large = datasets.mean_brightness(datasets.render_dataset(name, 96, 128))
    torch.testing.assert_close(small, large, rtol=0, atol=1e-3)


def test_brightness_ramp_levels_are_uniform_on_the_ramp():
    brightness = datasets.mean_brightness(datasets.render_dataset("brightness_ramp", 64, 64))
    # The levels are linspace(-0.9, 0.9, 200) by construction, exact up to float32 storage.
    expected = torch.linspace(-0.9, 0.9, datasets.DATASET_SIZE, dtype=torch.float64)
    torch.testing.assert_close(brightness.sort().values, expected, rtol=0, atol=1e-6)
    # A uniform distribution on [-0.9, 0.9] has std 1.8 / sqrt(12).
    assert brightness.std(unbiased=False).item() == pytest.approx(1.8 / math.sqrt(12), rel=0.02)
    # Shuffled: neighbours in dataset order are not neighbours on the ramp.
    assert brightness.diff().abs().mean() > 0.1


def test_subset_masks_split_at_the_median():
    images = datasets.render_dataset("colour_blobs", 16, 16)
    masks = datasets.subset_masks(images)
    assert tuple(masks) == datasets.SUBSETS
    assert masks["all"].all()
    assert int(masks["dark"].sum()) == int(masks["bright"].sum()) == datasets.DATASET_SIZE // 2
    assert not (masks["dark"] & masks["bright"]).any()
    brightness = datasets.mean_brightness(images)
    assert brightness[masks["dark"]].max() < brightness[masks["bright"]].min()
    median = brightness.sort().values[99:101].mean()  # even N: halfway between the two middle values
    assert (brightness[masks["dark"]] < median).all() and (brightness[masks["bright"]] >= median).all()


def test_a_batch_of_256_at_64x64_is_fast():
    # Brief's target: 256 x 3x64x64 against 200 images well under a second on 2 CPU cores (~0.05 s
    # measured); the bound leaves room for a loaded CI machine.
    import time

    data = datasets.render_dataset("brightness_ramp", 64, 64).double()
    noisy = torch.randn((256, 3, 64, 64))
    timings = []
    for _ in range(3):
        start = time.perf_counter()
        denoiser.posterior_mean_x0(noisy, torch.full((256,), 0.5), data)
        timings.append(time.perf_counter() - start)
    assert min(timings) < 1.0, timings
