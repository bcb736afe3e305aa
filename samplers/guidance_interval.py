"""Guidance limited to an interval of noise levels, in log-SNR (Kynkäänniemi et al. 2024,
"Applying Guidance in a Limited Interval Improves Sample and Distribution Quality in Diffusion
Models", arXiv 2404.07724): classifier-free guidance only where lambda_min <= λ <= lambda_max, the
conditional prediction alone (CFG scale 1) elsewhere.

λ = log SNR = log(signal²/noise²) of the (signal, noise) pair of a noise level (samplers/guidance.py
explains the pair; schedules/conversions.py computes it per model family). In log-SNR the interval
means the same noise levels for every family: λ = -2·log sigma on a VP model (sigma_data 1),
2·log((1-s)/s) on a flow model. SNR 0 (signal = 0) is λ = -inf exactly: the paper's §5.2 step,
where the model can only predict the data mean and guidance mostly shifts brightness and colour.
No sample left (noise = 0) is λ = +inf.

Pure torch, no host imports (tests/unit/test_purity.py).
"""
from __future__ import annotations

import math

import torch


def log_snr(signal: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
    """λ = 2·(log signal - log noise), exact at both ends: signal = 0 gives -inf, noise = 0 gives +inf
    (log 0 = -inf in IEEE arithmetic; both zero, which no pair is, would be NaN)."""
    signal, noise = torch.as_tensor(signal), torch.as_tensor(noise)
    return 2 * (signal.log() - noise.log())


def check_interval(lambda_min: float, lambda_max: float) -> None:
    """lambda_min <= lambda_max, neither NaN (±inf allowed: an unbounded side)."""
    if math.isnan(lambda_min) or math.isnan(lambda_max) or lambda_min > lambda_max:
        raise ValueError(f"the log-SNR interval [{lambda_min}, {lambda_max}] is empty or NaN; "
                         "expected lambda_min <= lambda_max")


def in_interval(lam: torch.Tensor, lambda_min: float, lambda_max: float) -> torch.Tensor:
    """Per-element bool: lambda_min <= λ <= lambda_max (closed at both ends; λ = -inf is inside only
    when lambda_min = -inf)."""
    return (lam >= lambda_min) & (lam <= lambda_max)


def interval_change(denoised: torch.Tensor, cond_denoised: torch.Tensor, inside: torch.Tensor) -> torch.Tensor:
    """What to add to a guided result `denoised` so that samples outside the interval get the
    conditional prediction instead: 0 inside, cond_denoised - denoised outside. `inside` is one bool
    per sample (shape [B]); the change has denoised's shape and dtype."""
    shape = (-1,) + (1,) * (denoised.ndim - 1)
    outside_change = cond_denoised.to(denoised.dtype) - denoised
    return torch.where(inside.to(denoised.device).view(shape), torch.zeros_like(denoised), outside_change)


def guided_steps(lams, lambda_min: float, lambda_max: float) -> list[bool]:
    """For a schedule's λ values: which steps are guided (for docs and benchmark tables)."""
    lams = torch.as_tensor(lams, dtype=torch.float64)
    return [bool(v) for v in in_interval(lams, lambda_min, lambda_max)]
