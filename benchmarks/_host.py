"""The benchmarks' host: tools/inprocess_host.py (as the host test tier loads it), a counter of
network evaluations, and the stock KSampler path with that counter."""
from __future__ import annotations

import json
import types
from pathlib import Path

import inprocess_host
import pack_nodes
import torch
from pack_nodes import EvaluationCounter, condition, host_zsnr_clamp, v_adapter, zero_snr  # noqa: F401 (re-exported)
from pack_nodes import reference as reference_model  # noqa: F401

ROOT = Path(__file__).resolve().parent.parent

RESULTS = ROOT / "benchmarks" / "results"


def load_host(threads: int | None = None) -> types.SimpleNamespace:
    """Import the host (CPU) and the pack, without progress bars; optionally fix the thread count."""
    if threads:
        torch.set_num_threads(threads)
    try:
        return inprocess_host.load_host(RESULTS / "host", quiet=True)
    except inprocess_host.HostUnavailable as error:
        raise SystemExit(str(error)) from None


def ksample(host, model, sampler, scheduler, steps, seeds, size=64, cfg=1.0, seed=0, positive=None, negative=None):
    """pack_nodes.ksample with its network evaluations counted: (samples [seeds, 3, size, size], NFE)."""
    counter = EvaluationCounter()
    samples = pack_nodes.ksample(host, counter.attach(model), sampler, scheduler, steps, seeds, size, cfg,
                                 positive, negative, seed)
    return samples, counter.calls


def save_results(results: dict, output: Path, table: str) -> None:
    """Write a benchmark's JSON (benchmarks/results/, git-ignored) and print its table."""
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(results, indent=1))
    print(table)
    print(f"\nwrote {output}")
