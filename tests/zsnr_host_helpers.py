"""Small helpers for host tests: build reference models and sample them through the host."""
from __future__ import annotations

import torch
from pack_nodes import condition, host_zsnr_clamp, reference, v_adapter, zero_snr  # noqa: F401 (re-exported)

DATA_BRIGHTNESS_STD = 1.8 / 12**0.5  # brightness_ramp means are uniform on [-0.9, 0.9]


def ksample(host, model, sampler="euler", scheduler="simple", steps=10, seeds=16, size=32, cfg=1.0,
            positive=None, negative=None, seed=0):
    """Stock KSampler (nodes.common_ksampler) on an empty pixel-space latent; returns samples."""
    positive = positive or condition(host)
    negative = negative or positive
    latent = {"samples": torch.zeros(seeds, 3, size, size)}
    out = host.nodes.common_ksampler(model, seed, steps, cfg, sampler, scheduler, positive, negative, latent)
    return out[0]["samples"]


def brightness_spread_ratio(samples: torch.Tensor) -> float:
    """r = std of per-image mean brightness / the data's (README "Why exact SNR 0: measured")."""
    return float(samples.mean(dim=(1, 2, 3)).std() / DATA_BRIGHTNESS_STD)
