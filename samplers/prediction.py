"""Conversions between model parameterisations (paper §6), exact at SNR 0 where they can be.

VP form: x_t = sqrt(alphā)·x0 + sqrt(1-alphā)·eps (paper eq. 1) and the velocity
v = sqrt(alphā)·eps - sqrt(1-alphā)·x0 (Salimans & Ho 2022; paper §6). Solving the pair:
    x0  = sqrt(alphā)·x_t - sqrt(1-alphā)·v
    eps = sqrt(1-alphā)·x_t + sqrt(alphā)·v
At alphā = 0 these give x0 = -v and eps = x_t without dividing by anything, which is why the
paper pairs zero terminal SNR with v prediction. The epsilon route x0 = (x_t - sqrt(1-alphā)·eps)
/ sqrt(alphā) divides by zero there: an epsilon model carries no information about x0 at SNR 0.

alphas_cumprod may be a number or any tensor broadcastable against the sample (e.g. shape
(B, 1, 1, 1)). Coefficients are computed in float64 and cast to the sample's dtype, so float32
latents stay float32.
"""

from __future__ import annotations

import torch


def _coefficients(alphas_cumprod, *samples: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(sqrt(alphā), sqrt(1-alphā)) in the samples' dtype, after checking 0 <= alphā <= 1."""
    like = samples[0]
    dtype = torch.result_type(*samples) if len(samples) > 1 else like.dtype
    alphas_cumprod = torch.as_tensor(alphas_cumprod, dtype=torch.float64, device=like.device)
    if not ((alphas_cumprod >= 0) & (alphas_cumprod <= 1)).all():
        raise ValueError(f"input 'alphas_cumprod' must lie in [0, 1] (and not be NaN); got {alphas_cumprod}")
    return alphas_cumprod.sqrt().to(dtype), (1 - alphas_cumprod).sqrt().to(dtype)


def x0_from_v(x_t: torch.Tensor, v: torch.Tensor, alphas_cumprod) -> torch.Tensor:
    """x0 = sqrt(alphā)·x_t - sqrt(1-alphā)·v (paper §6); at alphā = 0 exactly -v."""
    root_alpha, root_one_minus = _coefficients(alphas_cumprod, x_t, v)
    return root_alpha * x_t - root_one_minus * v


def eps_from_v(x_t: torch.Tensor, v: torch.Tensor, alphas_cumprod) -> torch.Tensor:
    """eps = sqrt(1-alphā)·x_t + sqrt(alphā)·v; at alphā = 0 exactly x_t (the input is pure noise)."""
    root_alpha, root_one_minus = _coefficients(alphas_cumprod, x_t, v)
    return root_one_minus * x_t + root_alpha * v


def x0_from_eps(x_t: torch.Tensor, eps: torch.Tensor, alphas_cumprod) -> torch.Tensor:
    """x0 = (x_t - sqrt(1-alphā)·eps) / sqrt(alphā) (DDPM eq. 15).

    Undefined at alphā = 0: raises ValueError rather than returning inf/NaN (paper §6).
    """
    root_alpha, root_one_minus = _coefficients(alphas_cumprod, x_t, eps)
    if (root_alpha == 0).any():
        raise ValueError("epsilon prediction cannot give x0 at SNR 0 (paper §6): alphas_cumprod contains 0")
    return (x_t - root_one_minus * eps) / root_alpha


def v_from_x0_eps(x0: torch.Tensor, eps: torch.Tensor, alphas_cumprod) -> torch.Tensor:
    """v = sqrt(alphā)·eps - sqrt(1-alphā)·x0 (paper §6); at alphā = 0 exactly -x0."""
    root_alpha, root_one_minus = _coefficients(alphas_cumprod, x0, eps)
    return root_alpha * eps - root_one_minus * x0


def eps_from_x0(x_t: torch.Tensor, x0: torch.Tensor, alphas_cumprod) -> torch.Tensor:
    """eps = (x_t - sqrt(alphā)·x0) / sqrt(1-alphā), from paper eq. 1; at alphā = 0 exactly x_t.

    Undefined at alphā = 1 (no noise in x_t): raises ValueError there.
    """
    root_alpha, root_one_minus = _coefficients(alphas_cumprod, x_t, x0)
    if (root_one_minus == 0).any():
        raise ValueError("eps is undefined at alphas_cumprod = 1 (x_t holds no noise)")
    return (x_t - root_alpha * x0) / root_one_minus


def ve_from_vp(x_t: torch.Tensor, alphas_cumprod) -> torch.Tensor:
    """VE sample x = x_t / sqrt(alphā) = x0 + sigma·eps (k-diffusion, ComfyUI).

    Only for alphā > 0: at SNR 0 the VE sample is infinite, so ValueError; keep the VP form there.
    """
    (root_alpha, _) = _coefficients(alphas_cumprod, x_t)
    if (root_alpha == 0).any():
        raise ValueError(
            "the VE sample x_t/sqrt(alphas_cumprod) is infinite at SNR 0; keep the VP form there"
        )
    return x_t / root_alpha


def vp_input_from_ve(x: torch.Tensor, sigma) -> torch.Tensor:
    """VP model input x_t = x / sqrt(1+sigma²) (ComfyUI's EPS/V calculate_input).

    hypot(1, sigma) = sqrt(1+sigma²) without overflowing sigma² for huge sigma. At sigma = inf the
    VE sample itself is infinite: start an SNR-0 sampler from the VP noise instead of calling this.
    """
    sigma = torch.as_tensor(sigma, dtype=torch.float64, device=x.device)
    if (sigma < 0).any() or sigma.isnan().any():
        raise ValueError(f"input 'sigma' must be >= 0; got {sigma}")
    return x / torch.hypot(torch.ones_like(sigma), sigma).to(x.dtype)
