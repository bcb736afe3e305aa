"""Conversions between alphā, SNR, sigma and timestep, exact at both ends of the schedule.

alphā = 0 ⇔ SNR = 0 ⇔ sigma = inf: every function here maps one end to the other without NaN.
VP form (paper eq. 1, DDPM): x_t = sqrt(alphā_t)·x0 + sqrt(1-alphā_t)·eps.
VE form (k-diffusion, ComfyUI): x = x0 + sigma·eps with sigma = sqrt((1-alphā)/alphā), so
x = x_t / sqrt(alphā_t) and SNR = alphā/(1-alphā) = 1/sigma². All results are float64.
"""

from __future__ import annotations

import torch


def _float64(value) -> torch.Tensor:
    return torch.as_tensor(value, dtype=torch.float64)


def sigma_from_alphas_cumprod(alphas_cumprod) -> torch.Tensor:
    """sigma = sqrt((1-alphā)/alphā) (VE noise level of a VP timestep).

    alphā = 0 (zero terminal SNR, Algorithm 1) gives sigma = inf exactly: 1/0 is +inf in IEEE
    arithmetic, never NaN. alphā = 1 gives 0.
    """
    alphas_cumprod = _float64(alphas_cumprod)
    return ((1 - alphas_cumprod) / alphas_cumprod).sqrt()


def alphas_cumprod_from_sigma(sigma) -> torch.Tensor:
    """alphā = 1/(1+sigma²), the inverse of sigma_from_alphas_cumprod; sigma = inf gives exactly 0."""
    sigma = _float64(sigma)
    return 1 / (1 + sigma**2)


def snr_from_alphas_cumprod(alphas_cumprod) -> torch.Tensor:
    """SNR = alphā/(1-alphā) (paper §2): 0 at alphā = 0, inf at alphā = 1."""
    alphas_cumprod = _float64(alphas_cumprod)
    return alphas_cumprod / (1 - alphas_cumprod)


def log_snr_from_alphas_cumprod(alphas_cumprod) -> torch.Tensor:
    """log SNR = log alphā - log(1-alphā): -inf at alphā = 0, +inf at alphā = 1.

    log1p keeps full precision where alphā is tiny (the terminal steps of a schedule).
    """
    alphas_cumprod = _float64(alphas_cumprod)
    return alphas_cumprod.log() - torch.log1p(-alphas_cumprod)


def sqrt_alpha_sigma_pair(alphas_cumprod) -> tuple[torch.Tensor, torch.Tensor]:
    """(sqrt(alphā), sqrt(1-alphā)): the VP coefficients of x0 and eps in x_t (paper eq. 1).

    No division, so alphā = 0 gives exactly (0, 1).
    """
    alphas_cumprod = _float64(alphas_cumprod)
    return alphas_cumprod.sqrt(), (1 - alphas_cumprod).sqrt()


def timestep_from_sigma(sigma, sigma_table: torch.Tensor) -> torch.Tensor:
    """Continuous timestep t(sigma) by linear interpolation in log-sigma over the table.

    The inverse of spacing.sigmas_at_timesteps: between table entries sigma_i <= sigma <=
    sigma_{i+1}, t = i + (log sigma - log sigma_i)/(log sigma_{i+1} - log sigma_i). sigma at or
    above the table's maximum gives T-1 (so sigma = inf, SNR 0, is the last timestep); at or
    below the minimum gives 0. An infinite top entry makes the last interval map every finite
    sigma to T-2 (the limit of the interpolation); no input gives NaN except NaN itself.
    Differs from ComfyUI 0.3.75's ModelSamplingDiscrete.timestep, which rounds to the nearest
    table entry.
    """
    table = _float64(sigma_table)
    if table.ndim != 1 or table.numel() < 2:
        raise ValueError(f"input 'sigma_table' has shape {tuple(table.shape)}; expected a 1-D table of >= 2")
    sigma = _float64(sigma).to(table.device)
    last = table.numel() - 1
    log_table = table.log()
    log_sigma = sigma.clamp(min=0).log()
    upper = torch.searchsorted(log_table, log_sigma.contiguous()).clamp(1, last)
    log_low, log_high = log_table[upper - 1], log_table[upper]
    fraction = (log_sigma - log_low) / (log_high - log_low)
    # log-linear interpolation towards log 0 = -inf or log inf = +inf: every finite sigma sits at
    # the finite end of that interval
    fraction = torch.where(torch.isinf(log_low), 1.0, torch.where(torch.isinf(log_high), 0.0, fraction))
    timestep = (upper - 1).to(torch.float64) + fraction
    timestep = torch.where(sigma >= table.max(), float(last), timestep)
    return torch.where(sigma <= table.min(), 0.0, timestep)
