"""The exact posterior-mean ("ideal") denoiser over a finite image set, and the schedule it was
"trained" with.

For data drawn uniformly from D = {d_1..d_N} and x_t = sqrt(ā) x0 + sqrt(1-ā) eps (DDPM eq. 4,
the VP form), Bayes gives

    E[x0 | x_t] = Σ_i w_i d_i,   w = softmax_i( -‖x_t - sqrt(ā) d_i‖² / (2(1-ā)) ).

This is the best any network can do on D, so it stands in for trained weights. At ā = 0 the
weights are uniform and the prediction is the data mean: the paper's §5.2 "at t = T the model can
only predict the mean".

Why float64: ‖x_t‖² is dropped (constant per row, the softmax ignores it), leaving
logits_i = (sqrt(ā) x_t·d_i - ā‖d_i‖²/2) / (1-ā). At the first training step of SD's schedule
1-ā = 8.5e-4 and for 3x64x64 images the logits reach ~1.7e7, which float32 (7 digits) rounds by
~4 (measured on brightness_ramp): any two images close enough to share the posterior would get
weights off by a factor up to e^4. Even at t = 500 the float32 weights are off by ~1e-4. float64
leaves logit errors of ~1e-9 at t = 0.
"""
from __future__ import annotations

import torch

from ..samplers.prediction import prediction_from_x0
from ..schedules.betas import alphas_cumprod_from_betas, make_betas, rescale_zero_terminal_snr
from ..schedules.conversions import (
    interpolate_at_timesteps,
    log_snr_from_alphas_cumprod,
    sqrt_alpha_sigma_pair,
)

TRAINED_SCHEDULES = ("scaled_linear", "scaled_linear_zsnr", "linear", "cosine")
DEFAULT_CHUNK_BYTES = 64 * 2**20
MAX_CHUNK_ROWS = 64


def trained_alphas_cumprod(name: str, num_train_timesteps: int = 1000) -> torch.Tensor:
    """alphā table (float64 [T]) of a named training schedule; "_zsnr" applies Algorithm 1."""
    if name not in TRAINED_SCHEDULES:
        raise ValueError(f"unknown trained schedule {name!r}; valid: {', '.join(TRAINED_SCHEDULES)}")
    betas = make_betas(name.removesuffix("_zsnr"), num_train_timesteps)
    if name.endswith("_zsnr"):
        betas = rescale_zero_terminal_snr(betas)
    return alphas_cumprod_from_betas(betas)


def alphas_cumprod_at(table: torch.Tensor, timesteps: torch.Tensor) -> torch.Tensor:
    """alphā at (possibly fractional) timesteps, float64, like a network that only sees t.

    Integer t reads the table exactly (so alphā_T = 0 stays exactly 0 on a zero-terminal-SNR
    schedule); fractional t interpolates log-SNR (conversions.interpolate_at_timesteps, the host's
    log-sigma interpolation), so on a zero-terminal-SNR schedule every t in (T-2, T-1] gives
    alphā = 0 as well. t is clamped to [0, T-1] as the host does.
    """
    return interpolate_at_timesteps(table, timesteps, log_snr_from_alphas_cumprod, torch.sigmoid, clamp=True)


def _per_sample_alphas(alphas_cumprod: torch.Tensor | float, batch: int) -> torch.Tensor:
    alphas = torch.as_tensor(alphas_cumprod, dtype=torch.float64).reshape(-1)
    if alphas.numel() == 1:
        alphas = alphas.expand(batch)
    if alphas.shape[0] != batch:
        raise ValueError(f"alphas_cumprod has {alphas.shape[0]} values for a batch of {batch}")
    if bool(((alphas < 0) | (alphas > 1)).any()) or bool(alphas.isnan().any()):
        raise ValueError(f"alphas_cumprod must lie in [0, 1], got {alphas.tolist()}")
    if bool((alphas == 1).any()):
        raise ValueError("alphas_cumprod = 1 means no noise (1 - alphā = 0): the posterior is a "
                         "point mass and the logits divide by zero; discrete schedules never reach it")
    return alphas


def _per_sample_allowed(allowed: torch.Tensor | None, batch: int, count: int) -> torch.Tensor | None:
    if allowed is None:
        return None
    allowed = allowed.to(torch.bool)
    if allowed.ndim == 1:
        allowed = allowed.unsqueeze(0).expand(batch, count)
    if allowed.shape != (batch, count):
        raise ValueError(f"allowed mask must be [{count}] or [{batch}, {count}], got {list(allowed.shape)}")
    if not bool(allowed.any(dim=1).all()):
        raise ValueError("every sample needs at least one allowed image in its subset")
    return allowed


def chunk_rows(values_per_row: int, max_chunk_bytes: int = DEFAULT_CHUNK_BYTES) -> int:
    """Rows per GEMM so one float64 chunk of the batch stays under max_chunk_bytes (1..64 rows)."""
    return max(1, min(MAX_CHUNK_ROWS, max_chunk_bytes // (8 * max(1, values_per_row))))


def posterior_weights(
    noisy_rows: torch.Tensor, alphas: torch.Tensor, data_rows: torch.Tensor, data_sq_norms: torch.Tensor,
    allowed: torch.Tensor | None = None,
) -> torch.Tensor:
    """Softmax weights [B, N] of each data point given flattened float64 x_t rows (one GEMM).

    logits_i = (sqrt(ā) x_t·d_i - ā‖d_i‖²/2) / (1-ā): the expanded -‖x_t - sqrt(ā) d_i‖²/(2(1-ā))
    without the per-row constant ‖x_t‖². At ā = 0 all logits are 0: uniform weights, no division.
    """
    alphas = alphas.unsqueeze(1)
    logits = (alphas.sqrt() * (noisy_rows @ data_rows.T) - alphas * data_sq_norms / 2) / (1 - alphas)
    if allowed is not None:
        logits = logits.masked_fill(~allowed, float("-inf"))
    return torch.softmax(logits, dim=1)


def posterior_mean_x0(
    noisy: torch.Tensor,
    alphas_cumprod: torch.Tensor | float,
    data: torch.Tensor,
    allowed: torch.Tensor | None = None,
    max_chunk_bytes: int = DEFAULT_CHUNK_BYTES,
) -> torch.Tensor:
    """E[x0 | x_t] over the images `data` [N, ...] for x_t = `noisy` [B, ...] (float64 result).

    alphas_cumprod: a float or a tensor [B] (per-sample alphā). allowed: None (all images), a bool
    mask [N], or [B, N] per sample, which gives the conditional mean over a subset. The batch is
    processed in chunks (chunk_rows) so the float64 copies stay bounded.
    """
    batch, count = noisy.shape[0], data.shape[0]
    if noisy.shape[1:] != data.shape[1:]:
        raise ValueError(f"noisy {list(noisy.shape)} and data {list(data.shape)} differ in image shape")
    alphas = _per_sample_alphas(alphas_cumprod, batch).to(noisy.device)
    allowed = _per_sample_allowed(allowed, batch, count)
    data_rows = data.reshape(count, -1).to(device=noisy.device, dtype=torch.float64)
    data_sq_norms = (data_rows * data_rows).sum(dim=1)
    noisy_rows = noisy.reshape(batch, -1)
    rows = chunk_rows(data_rows.shape[1], max_chunk_bytes)
    result = torch.empty((batch, data_rows.shape[1]), dtype=torch.float64, device=noisy.device)
    for start in range(0, batch, rows):
        part = slice(start, start + rows)
        weights = posterior_weights(
            noisy_rows[part].to(torch.float64), alphas[part], data_rows, data_sq_norms,
            None if allowed is None else allowed[part].to(noisy.device),
        )
        result[part] = weights @ data_rows
    return result.reshape(noisy.shape)


def eps_from_x0(noisy: torch.Tensor, alphas_cumprod: torch.Tensor | float, x0: torch.Tensor) -> torch.Tensor:
    """eps of the network for its posterior mean x0, float64 (samplers/prediction.py; exact at ā = 0)."""
    signal, noise = sqrt_alpha_sigma_pair(alphas_cumprod)
    return prediction_from_x0("eps", "vp", noisy.to(torch.float64), x0.to(torch.float64), signal, noise)


def v_from_x0(noisy: torch.Tensor, alphas_cumprod: torch.Tensor | float, x0: torch.Tensor) -> torch.Tensor:
    """v of the network for its posterior mean x0, float64 (samplers/prediction.py): it never divides
    by sqrt(ā), so at ā = 0 it is exactly -x0 (paper §6)."""
    signal, noise = sqrt_alpha_sigma_pair(alphas_cumprod)
    return prediction_from_x0("v", "vp", noisy.to(torch.float64), x0.to(torch.float64), signal, noise)
