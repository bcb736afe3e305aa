"""Brightness-recovery metrics: does a sampler reproduce the data's spread of per-image brightness?

The one definition of every figure the demo (tools/demo.py, demo_output/report.md), the benchmarks
(benchmarks/quality_per_nfe.py) and the tests report; README "Why exact SNR 0: measured" quotes it.

The paper's visible flaw is brightness collapse (Lin et al. 2023, §1 and Fig. 1): with a non-zero
terminal SNR the model never sees pure noise, so generated images stay near the data's mean
brightness (grey). On the reference model (reference/denoiser.py) the exact answer is known: a
perfect sampler draws the memorised images uniformly, so its per-image brightness is a draw from
the data's. DEFINITIONS below states each figure in one line (the demo prints them in its
report). Two conventions hold throughout:

- per-image brightness is the mean over all pixels and channels in the latent scale [-1, 1]
  (reference/datasets.mean_brightness for latents; pixel_brightness for decoded images in [0, 1],
  latent = 2 * pixel - 1 as in reference/datasets.py);
- every std is the population std (divide by n): the data is the whole memorised set, not a
  sample of it, and a generated set that equals the data then scores r = 1 exactly.

Pure torch in float64, no host imports (tests/unit/test_purity.py); brightness inputs are 1-D
arrays or tensors, returned figures are Python floats.
"""
from __future__ import annotations

import torch

DEFAULT_FLOOR_DRAWS = 4000
EXTREME_TAIL = 0.025
# decoded 8-bit images: a value within half a code of 0 or 1 was stored as 0 or 255
CLIP_TOLERANCE = 0.5 / 255
DEFINITIONS = {
    "r": "std of generated per-image brightness / the data's (1 is right, below 1 grey, above 1 burnt)",
    "W1": "exact 1-D Wasserstein-1 distance of generated per-image brightness to the data's, over the data's std",
    "floor": "the mean W1 a perfect sampler gets with the same seed count (uniform draws from the data)",
    "brightness error": "|mean generated brightness - target mean| (the data's, or a guided subset's)",
    "extreme": f"fraction of samples beyond the data's {100 * EXTREME_TAIL:g} / {100 - 100 * EXTREME_TAIL:g} % brightness quantiles",
    "clipped": "fraction of decoded pixel values at 0 or 1",
    "chroma": "mean over pixels of max - min over R, G, B of decoded images (0 grey, 1 a pure primary)",
    "nn": "RMS pixel distance of a sample to its nearest memorised image (0 for an exact sampler)",
}


def _values(name: str, values) -> torch.Tensor:
    tensor = torch.as_tensor(values, dtype=torch.float64).reshape(-1)
    if tensor.numel() < 2:
        raise ValueError(f"input '{name}' has {tensor.numel()} values; expected at least 2")
    if not torch.isfinite(tensor).all():
        raise ValueError(f"input '{name}' has non-finite values (NaN or inf); a sampler produced NaN?")
    return tensor


def _std(values: torch.Tensor) -> float:
    # population std: see the module docstring
    return float(values.std(correction=0))


def pixel_brightness(images) -> torch.Tensor:
    """Per-image brightness of decoded images with values in [0, 1] (one image per entry, any
    layout: a list of [H, W, 3] arrays or a [B, ...] tensor), in the latent scale: 2 * mean - 1."""
    means = [torch.as_tensor(image, dtype=torch.float64).mean() for image in images]
    return 2.0 * torch.stack(means) - 1.0


def spread_ratio(generated, data) -> float:
    """r = std(generated) / std(data), both population std (divide by n), as numpy.std."""
    generated, data = _values("generated", generated), _values("data", data)
    return _std(generated) / _std(data)


def wasserstein1(a, b) -> float:
    """Exact 1-D Wasserstein-1 distance between two empirical distributions: ∫ |F_a(x) - F_b(x)| dx.

    Both CDFs are step functions that only change at the pooled sample points, so the integral is
    a finite sum over the gaps between consecutive pooled points (Villani 2003, Remark 2.19).
    """
    a, b = torch.sort(_values("a", a)).values, torch.sort(_values("b", b)).values
    pooled = torch.sort(torch.cat([a, b])).values
    gaps = pooled[1:] - pooled[:-1]
    cdf_a = torch.searchsorted(a, pooled[:-1], right=True).to(torch.float64) / a.numel()
    cdf_b = torch.searchsorted(b, pooled[:-1], right=True).to(torch.float64) / b.numel()
    return float(((cdf_a - cdf_b).abs() * gaps).sum())


def normalised_wasserstein1(generated, data) -> float:
    """W1(generated, data) / std(data): scale-free, so datasets and resolutions compare."""
    data = _values("data", data)
    return wasserstein1(generated, data) / _std(data)


def extreme_fraction(generated, data, tail: float = EXTREME_TAIL) -> float:
    """Fraction of generated values below the data's `tail` quantile or above its 1 - `tail`
    quantile (linear interpolation, numpy.quantile's default): pushed to the ends of the range.

    The memorising reference model can only return values inside its images' range, so its
    over-exposure under strong guidance shows here and in the brightness error, not as clipped
    pixels."""
    generated, data = _values("generated", generated), _values("data", data)
    if not 0 < tail < 0.5:
        raise ValueError(f"input 'tail' = {tail!r} is not allowed; expected 0 < tail < 0.5")
    low, high = torch.quantile(data, torch.tensor([tail, 1 - tail], dtype=torch.float64))
    return float(((generated < low) | (generated > high)).to(torch.float64).mean())


def brightness_error(generated, target: float) -> float:
    """|mean(generated) - target|: how far the batch's mean brightness is from the target mean."""
    return abs(float(_values("generated", generated).mean()) - float(target))


def clipped_fraction(images, tolerance: float = CLIP_TOLERANCE) -> float:
    """Fraction of pixel values (decoded images in [0, 1], any layout) within `tolerance` of 0 or
    1: burnt or crushed pixels."""
    values = torch.cat([torch.as_tensor(image, dtype=torch.float64).reshape(-1) for image in images])
    return float(((values <= tolerance) | (values >= 1 - tolerance)).to(torch.float64).mean())


def chroma(images, channel_dim: int = 1) -> float:
    """Mean chroma of decoded images in [0, 1]: max - min over the colour channels (dim
    `channel_dim` of a [B, 3, H, W] tensor by default), the saturation of paper §3.4 Fig. 6 without
    HSV's division by the value, which is unstable on dark images."""
    values = torch.as_tensor(images, dtype=torch.float64)
    return float((values.amax(dim=channel_dim) - values.amin(dim=channel_dim)).mean())


def noise_floor(data, count: int, draws: int = DEFAULT_FLOOR_DRAWS, seed: int = 0, groups: int = 1) -> dict[str, float]:
    """What a perfect sampler scores with `count` seeds: `draws` times, sample `count` values
    uniformly with replacement from `data` (an exact sampler of the memorising model does exactly
    that) and score them against `data`.

    groups > 1: each draw is `groups` independent sets of `count` values; its W1 is the mean of
    their W1s (a benchmark that averages W1 over several seed batches) and its r is computed on
    all groups * count values together.
    Returns w1 (mean normalised W1, "the floor"), w1_q95 (95th percentile of a draw's W1: a figure
    below it is indistinguishable from the data at this seed count), r_std (the standard
    deviation of r, its sampling error) and r_q025 / r_q975.
    """
    data = _values("data", data)
    for name, value, minimum in (("count", count, 2), ("draws", draws, 10), ("groups", groups, 1)):
        if int(value) != value or value < minimum:
            raise ValueError(f"input '{name}' = {value!r} is not allowed; expected an integer >= {minimum}")
    generator = torch.Generator().manual_seed(int(seed))
    picks = torch.randint(0, data.numel(), (int(draws), int(groups), int(count)), generator=generator)
    samples = data[picks]
    w1 = torch.tensor([[normalised_wasserstein1(group, data) for group in draw] for draw in samples],
                      dtype=torch.float64).mean(dim=1)
    r = samples.reshape(int(draws), -1).std(dim=1, correction=0) / _std(data)
    return {
        "w1": float(w1.mean()),
        "w1_q95": float(torch.quantile(w1, 0.95)),
        "r_std": float(r.std()),
        "r_q025": float(torch.quantile(r, 0.025)),
        "r_q975": float(torch.quantile(r, 0.975)),
    }


def nearest_image_rms(samples: torch.Tensor, images: torch.Tensor) -> torch.Tensor:
    """Per sample, the root-mean-square pixel distance to its nearest image of `images` (float64 [B]).

    The reference model memorises `images`, so an exact sampler returns one of them (distance 0);
    a sampler that stops while the posterior still averages several images returns a blend of
    them (a blurry image), whose distance grows with the blur. Brightness figures cannot see that.
    """
    rows = samples.reshape(samples.shape[0], -1).to(torch.float64)
    data = images.reshape(images.shape[0], -1).to(torch.float64)
    if rows.shape[1] != data.shape[1]:
        raise ValueError(f"samples {list(samples.shape)} and images {list(images.shape)} differ in image shape")
    squared = (rows * rows).sum(1, keepdim=True) + (data * data).sum(1) - 2 * rows @ data.T
    return (squared.min(dim=1).values.clamp(min=0) / rows.shape[1]).sqrt()
