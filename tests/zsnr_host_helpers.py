"""Small helpers for host tests: build reference models and sample them through the host."""
from __future__ import annotations

import collections
import functools
import traceback
from pathlib import Path

import torch
from pack_nodes import EvaluationCounter, condition, host_zsnr_clamp, ksample, reference, v_adapter, zero_snr  # noqa: F401 (re-exported)
from torch.utils._python_dispatch import TorchDispatchMode
from zsnr_core.reference import datasets, metrics

PACK_ROOT = Path(__file__).resolve().parents[1]
TORCH_ROOT = Path(torch.__file__).resolve().parent
PACK_CODE = ("nodes", "schedules", "samplers", "reference")


@functools.lru_cache(maxsize=4)
def _data_brightness(height: int, width: int) -> torch.Tensor:
    return datasets.mean_brightness(datasets.render_dataset("brightness_ramp", height, width))


def brightness_spread_ratio(samples: torch.Tensor) -> float:
    """r of latent samples of the brightness_ramp reference model (reference/metrics.spread_ratio)."""
    return metrics.spread_ratio(datasets.mean_brightness(samples), _data_brightness(*samples.shape[-2:]))


class SyncCounter(TorchDispatchMode):
    """Counts scalar reads and copies to the CPU, and where (file:line in this pack) each came from
    (tests/host/test_host_syncs.py explains the kinds and why a CPU-only machine sees all scalar reads)."""

    def __init__(self):
        super().__init__()
        self.scalar_reads = 0
        self.cpu_copies = 0
        self.pack_sites = collections.Counter()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        kind = None
        if func is torch.ops.aten._local_scalar_dense.default:
            kind = "scalar read"
        elif func is torch.ops.aten._to_copy.default and _is_cpu(kwargs.get("device")):
            kind = "copy to cpu"
        elif func is torch.ops.aten.copy_.default and args[0].device.type == "cpu" and args[1].device.type != "cpu":
            kind = "copy to cpu"
        if kind == "scalar read":
            self.scalar_reads += 1
        elif kind:
            self.cpu_copies += 1
        if kind:
            site = _pack_site()
            if site:
                self.pack_sites[f"{kind} at {site}"] += 1
        return func(*args, **kwargs)


def _is_cpu(device) -> bool:
    return device is not None and torch.device(device).type == "cpu"


def _pack_site() -> str | None:
    """Where the sync was asked for, if that is this pack's own code: the innermost frame outside
    torch and this file, when it lies in nodes/, schedules/, samplers/ or reference/ (a sync in
    the host's sampler, even one running inside our wrapper, is the host's)."""
    for frame in reversed(traceback.extract_stack()[:-3]):
        path = Path(frame.filename).resolve()
        if path == Path(__file__).resolve() or (TORCH_ROOT in path.parents):
            continue
        if PACK_ROOT in path.parents and path.parts[len(PACK_ROOT.parts)] in PACK_CODE:
            return f"{path.relative_to(PACK_ROOT)}:{frame.lineno} ({frame.name})"
        return None
    return None
