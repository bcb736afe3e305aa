"""The exact first sampling step from SNR 0 (sigma_0 = inf), in ComfyUI's VE parameterisation.

k-diffusion samplers work on x = x0 + sigma·eps and divide by sigma (to_d), so they cannot start
at sigma = inf. Each step here is the sigma_0 → inf limit of the corresponding finite update,
derived in its docstring; the model's x0_hat at SNR 0 comes from v prediction (x0 = -v, paper §6).

`noise` is the sample at SNR 0 in VP form, x_T = sqrt(1-alphā_T)·eps = eps: the initial Gaussian
noise. `fresh_noise` is the independent noise an ancestral step injects.
"""

from __future__ import annotations

import math

import torch


def _sigma_like(sigma_next, like: torch.Tensor) -> torch.Tensor:
    """sigma_next as a tensor of the sample's dtype, after checking 0 <= sigma_next < inf."""
    sigma = torch.as_tensor(sigma_next, dtype=torch.float64, device=like.device)
    if not (torch.isfinite(sigma) & (sigma >= 0)).all():
        raise ValueError(f"input 'sigma_next' must be finite and >= 0; got {sigma}")
    return sigma.to(like.dtype)


def ddim_step_from_snr_zero(x0_hat: torch.Tensor, noise: torch.Tensor, sigma_next) -> torch.Tensor:
    """DDIM (eta = 0) / Euler step from sigma_0 = inf to sigma_next: x_1 = x0_hat + sigma_next·noise.

    Derivation. The Euler step of the probability-flow ODE (k-diffusion sample_euler, equal to
    DDIM in VE form) is x_1 = x + (sigma_next - sigma)·(x - x0_hat)/sigma
    = x0_hat + sigma_next·eps_hat with eps_hat = (x - x0_hat)/sigma. The VE sample is
    x = sqrt(1+sigma²)·z for the VP input z, so eps_hat = z·sqrt(1+sigma²)/sigma - x0_hat/sigma,
    which tends to z as sigma → inf. At SNR 0 the VP input is the noise itself (z = x_T = eps;
    eps_from_v gives exactly x_T at alphā = 0), hence x_1 = x0_hat + sigma_next·noise.
    In VP form this is paper §6's DDIM update at t = T:
    x_{t-1} = sqrt(alphā_{t-1})·x0_hat + sqrt(1-alphā_{t-1})·x_T, divided by sqrt(alphā_{t-1}).
    """
    return x0_hat + _sigma_like(sigma_next, x0_hat) * noise


def ancestral_limits(sigma_next, eta: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
    """(sigma_down, sigma_up) of k-diffusion's get_ancestral_step as sigma_from → inf.

    Derivation. get_ancestral_step(sigma_from, sigma_to, eta) takes
        sigma_up = min(sigma_to, eta·sqrt(sigma_to²·(sigma_from² - sigma_to²)/sigma_from²))
        sigma_down = sqrt(sigma_to² - sigma_up²).
    As sigma_from → inf, (sigma_from² - sigma_to²)/sigma_from² → 1, so
        sigma_up = sigma_to·min(1, eta),  sigma_down = sigma_to·sqrt(1 - min(1, eta)²).
    eta = 1 (DDPM, euler_ancestral): sigma_up = sigma_to, sigma_down = 0 — all of the new noise
    level is fresh noise. eta = 0: sigma_up = 0, sigma_down = sigma_to exactly (the DDIM step).
    Written as products, not a difference of squares, so both ends are exact.
    """
    eta = float(eta)
    if not (math.isfinite(eta) and eta >= 0):
        raise ValueError(f"input 'eta' = {eta} is not allowed; expected a finite value >= 0")
    sigma = torch.as_tensor(sigma_next, dtype=torch.float64)
    if not (torch.isfinite(sigma) & (sigma >= 0)).all():
        raise ValueError(f"input 'sigma_next' must be finite and >= 0; got {sigma}")
    share_up = min(1.0, eta)
    return sigma * math.sqrt(1.0 - share_up**2), sigma * share_up


def ancestral_step_from_snr_zero(
    x0_hat: torch.Tensor,
    noise: torch.Tensor,
    fresh_noise: torch.Tensor,
    sigma_next,
    eta: float = 1.0,
    s_noise: float = 1.0,
) -> torch.Tensor:
    """Ancestral (euler_ancestral / DDIM(eta)) step from sigma_0 = inf:
    x_1 = x0_hat + sigma_down·noise + sigma_up·s_noise·fresh_noise.

    Derivation. k-diffusion's ancestral step is the Euler step to sigma_down, which by the
    argument of ddim_step_from_snr_zero tends to x0_hat + sigma_down·noise, followed by adding
    s_noise·sigma_up·fresh_noise; (sigma_down, sigma_up) tend to ancestral_limits(sigma_next, eta).
    eta = 1 is DDPM's posterior sample at t = T (sigma_down = 0: x0_hat plus fresh noise only;
    note k-diffusion's `sigma_down == 0` shortcut, meant for the final step, would drop that
    noise); eta = 0 equals ddim_step_from_snr_zero.
    """
    sigma_down, sigma_up = ancestral_limits(sigma_next, eta)
    sigma_down = sigma_down.to(device=x0_hat.device, dtype=x0_hat.dtype)
    sigma_up = sigma_up.to(device=x0_hat.device, dtype=x0_hat.dtype)
    return x0_hat + sigma_down * noise + sigma_up * (float(s_noise) * fresh_noise)
