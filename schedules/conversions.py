"""Conversions between alphā, SNR, sigma and timestep, exact at both ends of the schedule.

alphā = 0 ⇔ SNR = 0 ⇔ sigma = inf: every function here maps one end to the other without NaN.
VP form (paper eq. 1, DDPM): x_t = sqrt(alphā_t)·x0 + sqrt(1-alphā_t)·eps.
VE form (k-diffusion, ComfyUI): x = x0 + sigma·eps with sigma = sqrt((1-alphā)/alphā), so
x = x_t / sqrt(alphā_t) and SNR = alphā/(1-alphā) = 1/sigma². All results are float64.
"""

from __future__ import annotations

import torch

from .snr_zero import is_snr_zero


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


def interpolate_at_timesteps(table: torch.Tensor, timesteps, to_line=None, from_line=None,
                             clamp: bool = False) -> torch.Tensor:
    """A per-timestep table at (possibly fractional) timesteps, float64: the one interpolator.

    Integer t reads the entry itself, exactly (so alphā_T = 0, sigma = inf or log-SNR = -inf stay
    what they are). Fractional t interpolates linearly in the space `to_line` maps the table to
    (log for sigma, log-SNR for alphā; none for a log-SNR table) and maps back with `from_line`:
    the host's interpolation, linear in log-sigma (upstream comfy/model_sampling.py,
    ModelSamplingDiscrete.sigma), is linear in log-SNR as log sigma = -log-SNR / 2, and a -inf end
    interpolates to -inf, never NaN. t outside [0, T-1]: clamped if `clamp` (as the host clamps
    a network's timestep), else a ValueError.
    """
    table = _float64(table)
    t = torch.as_tensor(timesteps, dtype=torch.float64, device=table.device)
    if table.ndim != 1 or table.numel() == 0:
        raise ValueError(f"input 'table' has shape {tuple(table.shape)}; expected a non-empty 1-D table")
    if clamp:
        t = t.clamp(0, table.numel() - 1)
    elif t.numel() and (t.isnan().any() or t.min() < 0 or t.max() > table.numel() - 1):
        raise ValueError(f"input 'timesteps' must lie in [0, {table.numel() - 1}]; got values from "
                         f"{t.min().item()} to {t.max().item()}")
    low, high = t.floor().long(), t.ceil().long()
    weight = t - low
    line = to_line(table) if to_line is not None else table
    blended = (1 - weight) * line[low] + weight * line[high]
    return torch.where(weight == 0, table[low], from_line(blended) if from_line is not None else blended)


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


def _pair_sigma(sigma, on_device: bool) -> torch.Tensor:
    """float64 on the CPU (checked by the caller), or on sigma's own device in its precision (at
    least float32; some devices have no float64) for per-step callers: a move to the CPU or a
    check with `.any()` is a host-device synchronisation, a stall on a GPU at every step."""
    sigma = torch.as_tensor(sigma).detach()
    if on_device:
        return sigma.to(torch.promote_types(sigma.dtype, torch.float32))
    return sigma.to(device="cpu", dtype=torch.float64)


def vp_pair(sigma, sigma_data: float = 1.0, terminal_sigma: float | None = None,
            on_device: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """(signal, noise) = (sigma_data, sigma)/sqrt(sigma² + sigma_data²), float64, for ComfyUI's VE sigma.

    With sigma_data = 1 this is (sqrt(alphā), sqrt(1-alphā)), alphā = 1/(1+sigma²); other
    sigma_data (EDM) measure x0 in units of sigma_data. sigma = inf, and every sigma at or above
    `terminal_sigma` (a model's declared SNR-0 sentinel), give exactly (0, 1): alphā = 0.
    on_device: computed where sigma is, without the input check (_pair_sigma), for the host's
    own sigmas at every step (nodes/rescale_cfg.py).
    """
    sigma = _pair_sigma(sigma, on_device)
    if not on_device and ((sigma < 0).any() or sigma.isnan().any()):
        raise ValueError(f"input 'sigma' must be >= 0; got {sigma}")
    norm = torch.hypot(sigma, torch.full_like(sigma, float(sigma_data)))
    at_zero = torch.isinf(sigma)
    if terminal_sigma is not None:
        at_zero = at_zero | is_snr_zero(sigma, terminal_sigma)
    signal = torch.where(at_zero, torch.zeros_like(sigma), float(sigma_data) / norm)
    noise = torch.where(at_zero, torch.ones_like(sigma), sigma / norm)
    return signal, noise


def flow_pair(sigma, on_device: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """(signal, noise) = (1-sigma, sigma), float64, for flow matching; sigma = 1 is SNR 0 exactly.
    on_device: as vp_pair's, with sigma clamped to 1 instead of checked."""
    sigma = _pair_sigma(sigma, on_device)
    if on_device:
        sigma = sigma.clamp(max=1.0)
    elif ((sigma < 0) | (sigma > 1) | sigma.isnan()).any():
        raise ValueError(f"input 'sigma' must lie in [0, 1] for a flow model; got {sigma}")
    return 1 - sigma, sigma
