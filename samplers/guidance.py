"""Classifier-free guidance and its rescale (paper §3.4, Algorithm 2), in any prediction space.

The (signal, noise) pair of a sigma comes from schedules/conversions.py (vp_pair, flow_pair), the
conversions between prediction spaces from samplers/prediction.py; what they mean:

A noisy sample is x_t = signal·x0 + noise·eps, with one (signal, noise) pair per sample:
  VP path (eps / v / EDM models): (sqrt(alphā), sqrt(1-alphā)), paper eq. 1; ComfyUI samples in
      VE form x = x0 + sigma·eps and feeds the model x_t = x/sqrt(1+sigma²), so alphā = 1/(1+sigma²).
  flow path (CONST, rectified flow): (1-sigma, sigma), x_t = (1-sigma)·x0 + sigma·eps.
Prediction spaces: x0; eps; v = the velocity of the path: on VP v = signal·eps - noise·x0
(Salimans & Ho; paper §6), on flow v = eps - x0 (what flow models predict). Everything is
written with the pair, never with sigma, so SNR 0 (signal = 0) is exact: v = -x0 there on VP,
and nothing divides by signal except eps → x0, which is undefined at SNR 0 (paper §6).

std is per sample over ALL non-batch dims (image [B,C,H,W] and video [B,C,T,H,W] alike). Its
estimator does not matter: Algorithm 2 uses only the ratio std(x_pos)/std(x_cfg) of two tensors of
the same size, in which the (N-1) vs N normalisation cancels. We use torch.std's default
(unbiased), as ComfyUI's RescaleCFG and diffusers' rescale_noise_cfg do, so results agree to
rounding; a sample with a single element uses the population std (the unbiased one is NaN).
"""
from __future__ import annotations

import torch

from .prediction import _check, per_sample, prediction_from_x0, x0_change_from_prediction_change

# std(x_cfg) below this many float epsilons (of the inputs' dtype) times the size of the numbers
# it was computed from is rounding noise, not spread: a constant tensor's computed std is a few
# eps·|value|, never reliably 0, and the ratio std(x_pos)/std(x_cfg) would explode.
ZERO_STD_EPS_FACTOR = 8.0


def work_dtype(dtype: torch.dtype) -> torch.dtype:
    """float64 stays float64; everything else (float32, float16, bfloat16) is computed in float32."""
    return torch.float64 if dtype == torch.float64 else torch.float32


# --- CFG and Algorithm 2 -----------------------------------------------------------------------

def cfg(cond: torch.Tensor, uncond: torch.Tensor, scale) -> torch.Tensor:
    """x_cfg = x_neg + w·(x_pos - x_neg) (paper Algorithm 2, line 1), written as
    x_pos + (w-1)·(x_pos - x_neg) so that w = 1 returns x_pos exactly."""
    return cond + (scale - 1) * (cond - uncond)


def per_sample_std(x: torch.Tensor) -> torch.Tensor:
    """std of each sample over all non-batch dims, shape [B, 1, ..., 1] (unbiased; see module doc)."""
    dims = tuple(range(1, x.ndim))
    count = x[0].numel() if x.ndim > 1 else 1
    return x.std(dim=dims, keepdim=True, correction=1 if count > 1 else 0)


def rescale_factor(cond: torch.Tensor, x_cfg: torch.Tensor, zero_std: torch.Tensor | None = None) -> torch.Tensor:
    """std(x_pos)/std(x_cfg) per sample (Algorithm 2, line 2), computed in work_dtype.

    Guard: where std(x_cfg) <= zero_std (per sample; default ZERO_STD_EPS_FACTOR·eps·max|x_cfg|
    in x_cfg's dtype) its spread is rounding noise: the factor is 1 there, never inf or NaN.
    """
    if zero_std is None:
        zero_std = zero_std_threshold(x_cfg.dtype, _per_sample_max_abs(x_cfg))
    dtype = work_dtype(x_cfg.dtype)
    cond, x_cfg = cond.to(dtype), x_cfg.to(dtype)
    std_cfg = per_sample_std(x_cfg)
    degenerate = std_cfg <= zero_std.to(dtype)
    safe_std_cfg = torch.where(degenerate, torch.ones_like(std_cfg), std_cfg)
    return torch.where(degenerate, torch.ones_like(std_cfg), per_sample_std(cond) / safe_std_cfg)


def zero_std_threshold(input_dtype: torch.dtype, magnitude: torch.Tensor) -> torch.Tensor:
    """The std below which a tensor of numbers of size `magnitude`, given in `input_dtype`, has no
    spread its precision can resolve: ZERO_STD_EPS_FACTOR·eps(input_dtype)·magnitude."""
    return ZERO_STD_EPS_FACTOR * torch.finfo(input_dtype).eps * magnitude


def _per_sample_max_abs(x: torch.Tensor) -> torch.Tensor:
    return x.abs().amax(dim=tuple(range(1, x.ndim)), keepdim=True) if x.ndim > 1 else x.abs()


def rescale_cfg_change(cond: torch.Tensor, uncond: torch.Tensor, scale, multiplier: float) -> torch.Tensor:
    """x_final - x_cfg = φ·(factor - 1)·x_cfg, in work_dtype.

    Algorithm 2 lines 2-3: x_rescaled = x_cfg·factor; x_final = φ·x_rescaled + (1-φ)·x_cfg.
    Written as a change so callers can add it to a guided result someone else already altered.
    The zero-spread guard is measured in the inputs' precision against |x_pos| + |w-1|·|x_pos - x_neg|,
    the size of the terms whose cancellation can leave a nearly constant x_cfg.
    """
    input_dtype, dtype = cond.dtype, work_dtype(cond.dtype)
    cond, uncond = cond.to(dtype), uncond.to(dtype)
    x_cfg = cfg(cond, uncond, scale)
    magnitude = _per_sample_max_abs(cond) + abs(scale - 1) * _per_sample_max_abs(cond - uncond)
    factor = rescale_factor(cond, x_cfg, zero_std_threshold(input_dtype, magnitude))
    return float(multiplier) * (factor - 1) * x_cfg


def rescale_cfg(cond: torch.Tensor, uncond: torch.Tensor, scale, multiplier: float) -> torch.Tensor:
    """Paper Algorithm 2 on predictions in one space: φ = 0 is plain CFG exactly, w = 1 is x_pos exactly."""
    dtype = work_dtype(cond.dtype)
    x_cfg = cfg(cond.to(dtype), uncond.to(dtype), scale)
    return (x_cfg + rescale_cfg_change(cond, uncond, scale, multiplier)).to(cond.dtype)


def rescaled_cfg_x0_change(x0_cond: torch.Tensor, x0_uncond: torch.Tensor, scale, multiplier: float,
                           space: str, path: str, x_t: torch.Tensor, signal, noise) -> torch.Tensor:
    """How much Algorithm 2 in `space` moves the guided x0: x0(rescaled CFG) - x0(plain CFG).

    CFG is an affine combination (weights w and 1-w sum to 1) and every conversion is affine in
    the prediction at fixed x_t, so plain CFG in any space maps to the same x0; only the rescale
    differs. Inputs are the conditional / unconditional x0 predictions (ComfyUI's cond_denoised,
    uncond_denoised). Computed in work_dtype, returned in x0_cond's dtype. Where noise = 0 (no
    noise left) eps and v do not exist and the change is 0.
    """
    _check(space, path)
    out_dtype, dtype = x0_cond.dtype, work_dtype(x0_cond.dtype)
    x0_cond, x0_uncond, x_t = x0_cond.to(dtype), x0_uncond.to(dtype), x_t.to(dtype)
    signal, noise = per_sample(signal, x0_cond), per_sample(noise, x0_cond)
    has_noise = noise > 0
    if space != "x0":
        noise = torch.where(has_noise, noise, torch.ones_like(noise))
    cond = prediction_from_x0(space, path, x_t, x0_cond, signal, noise)
    uncond = prediction_from_x0(space, path, x_t, x0_uncond, signal, noise)
    change = x0_change_from_prediction_change(space, path, rescale_cfg_change(cond, uncond, scale, multiplier),
                                              signal, noise)
    if space != "x0":
        change = torch.where(has_noise, change, torch.zeros_like(change))
    return change.to(out_dtype)


def unguided_x0_change(x0_cond: torch.Tensor, x0_uncond: torch.Tensor, scale) -> torch.Tensor:
    """x0_pos - x0_cfg = -(w-1)·(x0_pos - x0_neg): what turns a plain CFG result into the
    conditional prediction alone (for the SNR-0 step, where guidance only shifts brightness, §5.2)."""
    return -(scale - 1) * (x0_cond - x0_uncond)
