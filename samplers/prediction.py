"""Prediction parameterisations (paper §6) in one place: x0, eps, v and the flow velocity, as
functions of the sample's (signal, noise) pair, x_t = signal·x0 + noise·eps.

The pair comes from schedules/conversions.py: (sqrt(alphā), sqrt(1-alphā)) on the VP path (paper
eq. 1; ComfyUI's VE sample x = x_t/signal), (1-sigma, sigma) for flow matching. Writing everything
with the pair, never with sigma, keeps SNR 0 (signal = 0) exact: v = -x0 there on VP and eps = x_t,
and nothing divides by signal except eps → x0, which is undefined at SNR 0 (paper §6: an epsilon
model carries no information about x0 there).
"""
from __future__ import annotations

import torch

SPACES = ("v", "x0", "eps")
PATHS = ("vp", "flow")


def per_sample(value, like: torch.Tensor, dtype: torch.dtype | None = None) -> torch.Tensor:
    """A number, a per-sample 1-D tensor of length B, or a broadcastable tensor, shaped to broadcast
    against `like` [B, ...] and cast to `dtype` (default like.dtype) on like's device."""
    value = torch.as_tensor(value)
    if value.ndim == 1 and value.numel() == like.shape[0] and like.ndim > 1:
        value = value.view((-1,) + (1,) * (like.ndim - 1))
    return value.to(device=like.device, dtype=dtype or like.dtype)


def _check(space: str, path: str) -> None:
    if space not in SPACES:
        raise ValueError(f"input 'space' = {space!r} is not allowed; expected one of {', '.join(SPACES)}")
    if path not in PATHS:
        raise ValueError(f"input 'path' = {path!r} is not allowed; expected one of {', '.join(PATHS)}")


def prediction_from_x0(space: str, path: str, x_t: torch.Tensor, x0: torch.Tensor, signal, noise) -> torch.Tensor:
    """x0 → x0 | eps | v given x_t = signal·x0 + noise·eps (needs noise > 0 for eps and v).

    eps = (x_t - signal·x0)/noise (paper eq. 1 solved for eps).
    v on VP: signal·eps - noise·x0 = (signal·x_t - x0)/noise, using signal² + noise² = 1; at
    SNR 0 exactly -x0 (paper §6). v on flow: eps - x0 = (x_t - x0)/noise, using signal + noise = 1.
    """
    _check(space, path)
    if space == "x0":
        return x0
    signal, noise = per_sample(signal, x0), per_sample(noise, x0)
    if space == "eps":
        return (x_t - signal * x0) / noise
    if path == "vp":
        return (signal * x_t - x0) / noise
    return (x_t - x0) / noise


def x0_from_prediction(space: str, path: str, x_t: torch.Tensor, prediction: torch.Tensor, signal, noise) -> torch.Tensor:
    """x0 | eps | v → x0, the inverse of prediction_from_x0.

    v on VP: x0 = signal·x_t - noise·v (paper §6; -v at SNR 0); v on flow: x0 = x_t - noise·v;
    eps: x0 = (x_t - noise·eps)/signal, undefined at SNR 0: ValueError there, never inf/NaN.
    """
    _check(space, path)
    if space == "x0":
        return prediction
    signal, noise = per_sample(signal, prediction), per_sample(noise, prediction)
    if space == "eps":
        if (signal == 0).any():
            raise ValueError("epsilon cannot give x0 at SNR 0 (paper §6): signal contains 0")
        return (x_t - noise * prediction) / signal
    if path == "vp":
        return signal * x_t - noise * prediction
    return x_t - noise * prediction


def x0_change_from_prediction_change(space: str, path: str, change: torch.Tensor, signal, noise) -> torch.Tensor:
    """The change of x0 caused by a change of the prediction at fixed x_t (the linear part of
    x0_from_prediction): x0 → itself; v → -noise·change (VP and flow); eps → -(noise/signal)·change.

    At SNR 0 an eps prediction is x_t whatever the model thinks (it carries no x0 information),
    so guidance cannot change it: eps → 0 there instead of 0·inf.
    """
    _check(space, path)
    if space == "x0":
        return change
    signal, noise = per_sample(signal, change), per_sample(noise, change)
    if space == "v":
        return -noise * change
    has_signal = signal > 0
    ratio = torch.where(has_signal, noise / torch.where(has_signal, signal, torch.ones_like(signal)),
                        torch.zeros_like(signal))
    return -ratio * change
