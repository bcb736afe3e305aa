"""Brightness-recovery metrics: does a sampler reproduce the data's spread of per-image brightness?

The paper's visible flaw is brightness collapse: with a non-zero terminal SNR the model never sees
pure noise, so generated images stay near the data's mean brightness (grey). On the reference
model (reference/denoiser.py) the exact answer is known: a perfect sampler draws the memorised
images uniformly, so its per-image mean brightness is a draw from the data's. Two figures compare
the generated brightness distribution with the data's:

- r = std(generated) / std(data): 1 is right, below 1 is grey, above 1 is burnt;
- W1 / std(data): the 1-D Wasserstein distance between the two distributions, in units of the
  data's spread, against its noise floor (what a perfect sampler with the same seed count gets).

Pure torch in float64, no host imports; inputs are 1-D tensors of per-image brightness
(reference/datasets.mean_brightness of an image batch).
"""
from __future__ import annotations

import torch

DEFAULT_FLOOR_DRAWS = 4000


def _values(name: str, values) -> torch.Tensor:
    tensor = torch.as_tensor(values, dtype=torch.float64).reshape(-1)
    if tensor.numel() < 2:
        raise ValueError(f"input '{name}' has {tensor.numel()} values; expected at least 2")
    if not torch.isfinite(tensor).all():
        raise ValueError(f"input '{name}' has non-finite values (NaN or inf); a sampler produced NaN?")
    return tensor


def spread_ratio(generated, data) -> float:
    """r = std(generated) / std(data), both population std (divide by n), as numpy.std."""
    generated, data = _values("generated", generated), _values("data", data)
    return float(generated.std(correction=0) / data.std(correction=0))


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
    return wasserstein1(generated, data) / float(data.std(correction=0))


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
    r = samples.reshape(int(draws), -1).std(dim=1, correction=0) / data.std(correction=0)
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
