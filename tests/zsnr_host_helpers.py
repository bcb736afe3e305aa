"""Small helpers for host tests: build reference models and sample them through the host."""
from __future__ import annotations

import functools

import torch
from pack_nodes import condition, host_zsnr_clamp, reference, v_adapter, zero_snr  # noqa: F401 (re-exported)
from zsnr_core.reference import datasets, metrics


def ksample(host, model, sampler="euler", scheduler="simple", steps=10, seeds=16, size=32, cfg=1.0,
            positive=None, negative=None, seed=0):
    """Stock KSampler (nodes.common_ksampler) on an empty pixel-space latent; returns samples."""
    positive = positive or condition(host)
    negative = negative or positive
    latent = {"samples": torch.zeros(seeds, 3, size, size)}
    out = host.nodes.common_ksampler(model, seed, steps, cfg, sampler, scheduler, positive, negative, latent)
    return out[0]["samples"]


@functools.lru_cache(maxsize=4)
def _data_brightness(height: int, width: int) -> torch.Tensor:
    return datasets.mean_brightness(datasets.render_dataset("brightness_ramp", height, width))


def brightness_spread_ratio(samples: torch.Tensor) -> float:
    """r of latent samples of the brightness_ramp reference model (reference/metrics.spread_ratio)."""
    return metrics.spread_ratio(datasets.mean_brightness(samples), _data_brightness(*samples.shape[-2:]))
