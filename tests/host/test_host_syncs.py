"""Host-device synchronisations the pack adds per sampling step: none after the first step.

A TorchDispatchMode sees every aten call of a sampling through the stock KSampler path. It counts
the two kinds that make the host wait for the device: scalar reads (`aten._local_scalar_dense`:
`.item()`, `float(t)`, `bool(t)`, `if t.any():`) and copies that name the CPU as their target
(`aten._to_copy` / `aten.copy_` into a CPU tensor, e.g. `t.to(device="cpu")`). On a GPU each is
a pipeline stall. This machine has no GPU, so a copy from a tensor that already is on the CPU
and is written `t.cpu()` dispatches nothing and cannot be seen; scalar reads are all seen.

Per step = the slope between 8 and 16 steps (dpmpp_2m + karras, cfg 3, the reference model), so
what happens once per sampling (the exact first step's checks, the host's set-up) cancels. The
pack's syncs are the difference between the patched model (ZeroTerminalSNR exact +
ZSNRRescaleCFG) and the bare model. A count, not a timing.

Run with `-s` to see the counts and where in the pack each sync of a sampling comes from.
"""
from __future__ import annotations

import pytest
import torch
from pack_nodes import condition, reference, zero_snr
from zsnr_host_helpers import SyncCounter

pytestmark = pytest.mark.host
STEPS = (8, 16)


def count_sampling(host, model, steps: int, seeds: int = 2, size: int = 16) -> SyncCounter:
    positive = condition(host, "bright")
    negative = condition(host, "all")
    latent = {"samples": torch.zeros(seeds, 3, size, size)}
    counter = SyncCounter()
    with counter:
        (out,) = host.nodes.common_ksampler(model, 0, steps, 3.0, "dpmpp_2m", "karras", positive, negative, latent)
    assert torch.isfinite(out["samples"]).all()
    return counter


def per_step(host, model) -> tuple[float, float, SyncCounter]:
    count_sampling(host, model, STEPS[0])  # warm-up: once-per-process caches (e.g. the reference images resized)
    low, high = (count_sampling(host, model, steps) for steps in STEPS)
    span = STEPS[1] - STEPS[0]
    return (high.scalar_reads - low.scalar_reads) / span, (high.cpu_copies - low.cpu_copies) / span, high


@pytest.fixture(scope="module")
def models(host):
    bare = reference(host)
    exact = zero_snr(host, bare, "exact")
    return {
        "bare": bare,
        "ZeroTerminalSNR": exact,
        "ZeroTerminalSNR + ZSNRRescaleCFG": host.node["ZSNRRescaleCFG"].execute(model=exact, multiplier=0.7).result[0],
        "... + unguided terminal step + sigma window": host.node["ZSNRRescaleCFG"].execute(
            model=exact, multiplier=0.7, terminal_step="unguided", sigma_start=50.0, sigma_end=0.5).result[0],
    }


def test_the_counter_sees_scalar_reads_and_copies_to_the_cpu():
    # the instrument itself: one item(), one bool(), one explicit copy to the CPU
    counter = SyncCounter()
    with counter:
        value = torch.ones(3)
        value.sum().item()
        bool((value > 0).any())
        value.to(device="cpu", dtype=torch.float64)
        value * 2  # neither
    assert (counter.scalar_reads, counter.cpu_copies) == (2, 1)


def test_the_pack_adds_no_sync_per_step(host, models):
    bare_reads, bare_copies, _ = per_step(host, models["bare"])
    print(f"\nper step (slope {STEPS[0]}..{STEPS[1]} steps, dpmpp_2m + karras, cfg 3): "
          f"bare host path {bare_reads:g} scalar reads, {bare_copies:g} copies to the CPU")
    for name, model in models.items():
        if name == "bare":
            continue
        reads, copies, counter = per_step(host, model)
        print(f"  {name}: {reads:g} scalar reads, {copies:g} copies to the CPU per step; pack sites in one "
              f"{STEPS[1]}-step sampling: {dict(counter.pack_sites) or 'none'}")
        assert (reads - bare_reads, copies - bare_copies) == (0, 0), (name, dict(counter.pack_sites))


def test_device_pair_equals_the_conversions(host):
    # nodes/rescale_cfg.device_pair is conversions.vp_pair / flow_pair without their CPU copy and
    # checks: the same values at every sigma, the SNR-0 sentinel and inf included
    from zsnr_core.schedules import conversions

    rescale = host.pack.nodes.rescale_cfg
    sentinel = 4518.76
    values = [0.0, 1e-4, 0.0292, 0.5, 1.0, 3.3, 14.6, 157.0, 2254.2, sentinel, 1e6, float("inf")]
    # float64 sigmas: the same numbers; the host's float32 sigmas: computed in float32, within 2 ulp
    for dtype, rtol in ((torch.float64, 1e-15), (torch.float32, 2.4e-7)):
        sigmas = torch.tensor(values, dtype=dtype)
        for sigma_data in (1.0, 0.5):
            for terminal in (None, sentinel):
                theirs = conversions.vp_pair(sigmas, sigma_data, terminal)
                mine = rescale.device_pair("vp", sigmas, sigma_data, terminal)
                for a, b in zip(mine, theirs, strict=True):
                    assert a.dtype == dtype
                    torch.testing.assert_close(a, b.to(dtype), rtol=rtol, atol=0)
        flow_sigmas = torch.tensor([0.0, 0.01, 0.25, 0.5, 0.99, 1.0], dtype=dtype)
        for a, b in zip(rescale.device_pair("flow", flow_sigmas), conversions.flow_pair(flow_sigmas), strict=True):
            torch.testing.assert_close(a, b.to(dtype), rtol=0, atol=0)
        rflow = torch.tensor([0.0, 0.3, 1.0, 80.0], dtype=dtype)  # COSMOS_RFLOW: s = sigma/(1+sigma)
        for a, b in zip(rescale.device_pair("flow", rflow, rflow=True), conversions.flow_pair(rflow / (1 + rflow)),
                        strict=True):
            torch.testing.assert_close(a, b.to(dtype), rtol=rtol, atol=0)
