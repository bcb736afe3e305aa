"""Soak (issue 8): 300 prompts mixing the pack's nodes through one dedicated server, with
POST /interrupt in between.

The prompts rotate over five graphs on one reference model (exact ZTSNR + v + trailing on
KSampler; the spacing scheduler with SamplerCustomAdvanced; RescaleCFG against plain CFG; the
clamped terminals with the host's own schedulers; the schedule plot) with 1-3 steps on 16-32 px
latents and varying samplers and seeds. Every third prompt repeats
the one before it exactly, so the host serves it from its cache; the others get new seeds. Prompts
are queued in chunks of ten, and every other chunk is interrupted at a seeded moment.

Passes when no valid prompt fails (an interrupted one is not a failure) and the server's resident
memory grows by less than 5 % from prompt 50 (after every graph kind has run and warmed up) to
the end. Figures: printed, and written to test_output/reliability/soak.json.
"""
from __future__ import annotations

import json
import random
import time

import psutil
import pytest
from comfy_server import ComfyServer, ServerFailed
from example_graphs import (
    reference_sampling_graph,
    rescale_cfg_graph,
    ztsnr_vpred_trailing_graph,
)
from zsnr_testlib import TEST_OUTPUT

pytestmark = pytest.mark.e2e
PROMPTS, CHUNK, BASELINE_AT = 300, 10, 50
MAX_GROWTH = 0.05
SEED = 300  # any fixed value: the same prompt sequence every run
SAMPLERS = ("euler", "euler_ancestral", "dpmpp_2m", "heun", "ddim")


def plot_graph(spacing: str, steps: int, terminal: str) -> dict:
    return {
        "1": {"class_type": "ZSNRReferenceModel", "inputs": {
            "dataset": "brightness_ramp", "trained_schedule": "scaled_linear_zsnr", "prediction": "v_prediction"}},
        "2": {"class_type": "ZeroTerminalSNR", "inputs": {"model": ["1", 0], "terminal": terminal}},
        "3": {"class_type": "ZSNRSchedulePlot", "inputs": {"model": ["2", 0], "spacing": spacing, "steps": steps,
                                                           "y_axis": "log_snr"}},
    }


def soak_graph(index: int, rng: random.Random) -> dict:
    """Prompt `index`: the graph kind rotates, the rest is drawn from rng (so the seed varies)."""
    kind, steps, seed = index % 5, rng.randint(1, 3), rng.randrange(2**32)
    size, batch = rng.choice((16, 32)), rng.randint(1, 2)
    prefix = "zsnr_soak/p"
    if kind == 0:
        return ztsnr_vpred_trailing_graph(steps=steps, sampler=rng.choice(SAMPLERS), batch=batch, size=size, seed=seed,
                                          prefix=prefix)
    if kind == 1:
        return reference_sampling_graph(spacing=rng.choice(("trailing", "leading", "linspace", "sgm_uniform")),
                                        steps=steps, sampler=rng.choice(SAMPLERS), batch=batch, size=size, seed=seed,
                                        prefix=prefix)
    if kind == 2:
        return rescale_cfg_graph(multiplier=rng.choice((0.0, 0.7, 1.0)), steps=steps, batch=batch, size=size, seed=seed,
                                 prefix=prefix)
    if kind == 3:  # the host's own schedulers on the clamped variants
        graph = ztsnr_vpred_trailing_graph(steps=steps, sampler=rng.choice(SAMPLERS), batch=batch, size=size,
                                           seed=seed, prefix=prefix)
        graph["2"]["inputs"]["terminal"] = rng.choice(("clamp_comfy", "clamp_diffusers"))
        graph["6"]["inputs"]["scheduler"] = rng.choice(("simple", "karras", "leading", "linspace"))
        return graph
    return plot_graph(rng.choice(("trailing", "leading", "linspace")), rng.randint(1, 30),
                      rng.choice(("exact", "clamp_comfy")))


def outcome(entry: dict, graph: dict) -> str:
    messages = entry["status"].get("messages", [])
    if any(event == "execution_interrupted" for event, _ in messages):
        return "interrupted"
    if entry["status"].get("status_str") != "success":
        return "failed"
    cached = {node for event, data in messages if event == "execution_cached" for node in data["nodes"]}
    return "succeeded from cache" if cached >= set(graph) else "succeeded"


@pytest.fixture(scope="module")
def soak_server():
    server = ComfyServer(TEST_OUTPUT / "hosts" / "soak")
    try:
        server.start(timeout=240)
    except ServerFailed as error:
        pytest.fail(str(error))
    try:
        yield server
    finally:
        server.stop()


def test_soak_prompts_with_interrupts_no_failures_no_memory_growth(soak_server):
    client, process = soak_server.client(), psutil.Process(soak_server.process.pid)
    rng, history = random.Random(SEED), []
    tally, failures, rss = {}, [], {}
    started = time.monotonic()
    for chunk_start in range(0, PROMPTS, CHUNK):
        prompt_ids = []
        for index in range(chunk_start, chunk_start + CHUNK):
            # every third prompt repeats the one before it: the host's cache then serves all of it
            graph = history[-1] if index % 3 == 2 else soak_graph(index, rng)
            history.append(graph)
            prompt_ids.append((index, graph, client.queue_prompt(graph)))
        if (chunk_start // CHUNK) % 2 == 1:
            time.sleep(rng.uniform(0.0, 0.4))
            client.interrupt()
        for index, graph, prompt_id in prompt_ids:
            entry = client.wait(prompt_id, timeout=300)
            result = outcome(entry, graph)
            tally[result] = tally.get(result, 0) + 1
            if result == "failed":
                failures.append((index, json.dumps(entry["status"].get("messages"))[:1500]))
            done = index + 1
            if done == BASELINE_AT or done == PROMPTS or done % 50 == 0:
                rss[done] = process.memory_info().rss
    elapsed = time.monotonic() - started
    growth = rss[PROMPTS] / rss[BASELINE_AT] - 1
    figures = {"prompts": PROMPTS, "outcomes": tally, "failures": len(failures), "seconds": round(elapsed, 1),
               "rss_mib": {str(k): round(v / 2**20, 1) for k, v in sorted(rss.items())},
               "rss_growth_from_prompt_50": round(growth, 4)}
    out = TEST_OUTPUT / "reliability"
    out.mkdir(parents=True, exist_ok=True)
    (out / "soak.json").write_text(json.dumps(figures, indent=2) + "\n")
    print(f"\nsoak: {PROMPTS} prompts in {elapsed:.0f} s: {tally}; "
          f"server RSS {rss[BASELINE_AT] / 2**20:.0f} MiB at prompt {BASELINE_AT} -> {rss[PROMPTS] / 2**20:.0f} MiB "
          f"at {PROMPTS} ({growth:+.2%}); samples {figures['rss_mib']}")
    assert not failures, failures[:5]
    assert tally.get("interrupted", 0) > 0, "no prompt was interrupted: the interrupts never hit a running prompt"
    assert growth < MAX_GROWTH, f"server RSS grew {growth:.1%} from prompt {BASELINE_AT} to {PROMPTS}"
