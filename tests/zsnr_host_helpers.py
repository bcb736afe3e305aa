"""Small helpers for host tests: build reference models and sample them through the host."""
from __future__ import annotations

import functools

import torch
from pack_nodes import condition, host_zsnr_clamp, ksample, reference, v_adapter, zero_snr  # noqa: F401 (re-exported)
from zsnr_core.reference import datasets, metrics


@functools.lru_cache(maxsize=4)
def _data_brightness(height: int, width: int) -> torch.Tensor:
    return datasets.mean_brightness(datasets.render_dataset("brightness_ramp", height, width))


def brightness_spread_ratio(samples: torch.Tensor) -> float:
    """r of latent samples of the brightness_ramp reference model (reference/metrics.spread_ratio)."""
    return metrics.spread_ratio(datasets.mean_brightness(samples), _data_brightness(*samples.shape[-2:]))
