"""Discrete beta schedules (paper Table 1) and Algorithm 1 (rescale to zero terminal SNR).

Everything is float64: Algorithm 1 subtracts sqrt(alphā_T) ≈ 0.068 from values near 1 and the
terminal SNR of the cosine schedule is 2.4e-9, both of which float32 cannot resolve.
"""
from __future__ import annotations

import math

import torch

BETA_SCHEDULES = ("linear", "scaled_linear", "cosine", "cosine_unclipped")


def linear_betas(num_train_timesteps: int = 1000, beta_start: float = 1e-4, beta_end: float = 0.02) -> torch.Tensor:
    """DDPM linear schedule (Ho et al. 2020; paper Table 1 "linear"): beta linear in t."""
    return torch.linspace(beta_start, beta_end, num_train_timesteps, dtype=torch.float64)


def scaled_linear_betas(
    num_train_timesteps: int = 1000, beta_start: float = 0.00085, beta_end: float = 0.012
) -> torch.Tensor:
    """Stable Diffusion's schedule (paper Table 1): linear in sqrt(beta), then squared.

    ComfyUI calls this schedule "linear" in make_beta_schedule; diffusers calls it "scaled_linear".
    """
    return torch.linspace(beta_start**0.5, beta_end**0.5, num_train_timesteps, dtype=torch.float64) ** 2


def cosine_betas(num_train_timesteps: int = 1000, max_beta: float | None = 0.999, s: float = 0.008) -> torch.Tensor:
    """iDDPM cosine schedule (Nichol & Dhariwal 2021): alphā(t) = f(t)/f(0), f = cos²((t/T+s)/(1+s)·π/2).

    With max_beta = 0.999 (the published clip) the terminal SNR is 2.4e-9 (paper Table 1); with
    max_beta = None the clip is removed and alphā_T is zero up to rounding (paper §3.1).
    """

    def f(t: float) -> float:
        return math.cos((t / num_train_timesteps + s) / (1 + s) * math.pi / 2) ** 2

    betas = torch.tensor(
        [1 - f(t + 1) / f(t) for t in range(num_train_timesteps)], dtype=torch.float64
    )
    if max_beta is not None:
        betas = betas.clamp(max=max_beta)
    else:
        betas[-1] = 1.0  # f(T) is cos²(π/2): zero in exact arithmetic, 1e-33 after rounding
    return betas


def make_betas(name: str, num_train_timesteps: int = 1000) -> torch.Tensor:
    """Betas of a named schedule with its published constants (diffusers' names)."""
    if name == "linear":
        return linear_betas(num_train_timesteps)
    if name == "scaled_linear":
        return scaled_linear_betas(num_train_timesteps)
    if name == "cosine":
        return cosine_betas(num_train_timesteps)
    if name == "cosine_unclipped":
        return cosine_betas(num_train_timesteps, max_beta=None)
    raise ValueError(f"unknown beta schedule {name!r}; valid: {', '.join(BETA_SCHEDULES)}")


def alphas_cumprod_from_betas(betas: torch.Tensor) -> torch.Tensor:
    """alphā_t = Π_{s≤t} (1 - beta_s) (DDPM eq. 4), in float64."""
    return torch.cumprod(1 - betas.to(torch.float64), dim=0)


def betas_from_alphas_cumprod(alphas_cumprod: torch.Tensor) -> torch.Tensor:
    """Inverse of the cumulative product: alphas_t = alphā_t / alphā_{t-1}, alphas_0 = alphā_0."""
    alphas_cumprod = alphas_cumprod.to(torch.float64)
    alphas = torch.cat([alphas_cumprod[:1], alphas_cumprod[1:] / alphas_cumprod[:-1]])
    return 1 - alphas


def rescale_alphas_cumprod_zero_terminal_snr(alphas_cumprod: torch.Tensor) -> torch.Tensor:
    """Algorithm 1 (Lin et al. 2023) on alphā: shift sqrt(alphā) so its last value is 0, then
    scale so its first value is unchanged.

        s = sqrt(alphā);  s ← (s - s_T) · s_0 / (s_0 - s_T);  alphā ← s²

    Idempotent: when s_T is already 0 the map is the identity.
    """
    root = alphas_cumprod.to(torch.float64).sqrt()
    first, last = root[0].clone(), root[-1].clone()
    root = (root - last) * first / (first - last)
    root[-1] = 0.0  # exact, not an artefact of the subtraction
    return root**2


def rescale_zero_terminal_snr(betas: torch.Tensor) -> torch.Tensor:
    """Algorithm 1 (Lin et al. 2023) on betas: afterwards alphā_T = 0 exactly and beta_T = 1."""
    return betas_from_alphas_cumprod(rescale_alphas_cumprod_zero_terminal_snr(alphas_cumprod_from_betas(betas)))


def clamp_terminal(alphas_cumprod: torch.Tensor, terminal_alphas_cumprod: float) -> torch.Tensor:
    """Replace alphā_T by a small positive value (the clamp peers use instead of exact 0).

    ComfyUI's zsnr option uses 4.8973451890853435e-08 (sigma_T ≈ 4518.76); diffusers' Euler,
    DPM-Solver and UniPC schedulers use 2**-24 (sigma_T = 4096).
    """
    clamped = alphas_cumprod.to(torch.float64).clone()
    clamped[-1] = terminal_alphas_cumprod
    return clamped
