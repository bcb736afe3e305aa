"""The benchmark scripts run end to end on a tiny configuration (their own process, the real host)
and write consistent results. Timings are never asserted: the benchmarks report them."""
from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def run_script(name: str, *args: str) -> str:
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / name), *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def test_quality_per_nfe_scores_every_configuration_and_counts_nfe(tmp_path):
    output = tmp_path / "quality.json"
    table = run_script("quality_per_nfe.py", "--seeds", "8", "--size", "16", "--steps", "2,4", "--samplers", "euler,heun",
                       "--configs", "flawed_sd/leading,ours/logsnr_uniform", "--output", str(output))
    result = json.loads(output.read_text())
    records = {(r["config"], r["sampler"], r["steps"]): r for r in result["records"]}
    assert len(records) == 8
    for (config, sampler, steps), record in records.items():
        assert record["nan_count"] == 0 and math.isfinite(record["r"]) and math.isfinite(record["w1"])
        # one network call per euler step; heun adds a corrector call on every step but the last
        # (2S - 1), and with exact ZTSNR its first step from SNR 0 is the single exact call (2S - 2)
        heun_nfe = 2 * steps - (2 if config.startswith("ours") else 1)
        assert record["nfe"] == (steps if sampler == "euler" else heun_nfe), record
        assert f"| {config} | {sampler} |" in table
    assert output.with_suffix(".png").stat().st_size > 1000
    goal = run_script("quality_per_nfe.py", "--report", "--output", str(output), "--goal-table", "S=4")
    assert "| euler | logsnr_uniform | 4 |" in goal and "flawed" not in goal


def test_overhead_times_every_path_and_the_patched_clone_shares_the_weights(tmp_path):
    output = tmp_path / "overhead.json"
    table = run_script("overhead.py", "--models", "reference", "--rounds", "1", "--steps", "2", "--images", "64",
                       "--seeds", "2", "--output", str(output))
    result = json.loads(output.read_text())["models"]["reference"]
    assert set(result["median_seconds"]) == {"host_bare", "ours_chain", "host_rescale", "ours_rescale"}
    assert all(value > 0 for value in result["median_seconds"].values())
    assert result["memory"]["clone_shares_the_module"] is True
    assert "| reference | 2 |" in table


def test_quality_per_nfe_per_size_with_node_schedules(tmp_path):
    output = tmp_path / "sizes.json"
    configs = "ours/logsnr_resolution,host_zsnr/ays_sd1,ours/gits,host_zsnr/kl_optimal"
    text = run_script("quality_per_nfe.py", "--seeds", "4", "--sizes", "8,16", "--steps", "3", "--samplers", "euler",
                      "--configs", configs, "--output", str(output))
    result = json.loads(output.read_text())
    assert result["sizes"] == [8, 16] and set(result["floors"]) == {"8", "16"}
    records = {(r["size"], r["config"]): r for r in result["records"]}
    assert len(records) == 8
    for record in records.values():
        assert record["nan_count"] == 0 and record["nfe"] == 3, record  # euler: one network call per step
    assert "| configuration | sampler | 8² S=3 | 16² S=3 |" in text
    assert output.with_name("sizes_per_size.png").stat().st_size > 1000
    # --merge adds a size to the same file
    run_script("quality_per_nfe.py", "--seeds", "4", "--sizes", "12", "--steps", "3", "--samplers", "euler",
               "--configs", "ours/logsnr_resolution", "--output", str(output), "--merge")
    assert json.loads(output.read_text())["sizes"] == [8, 12, 16]


def test_quality_per_nfe_batch_calls_sample_batch_k_with_seed_plus_k(tmp_path):
    # --batch-calls: calls of at most CALL_SEEDS (64) seeds, call k with --seed + k; a batch of 6
    # seeds is one call, so batch k is the same draw as a one-batch run with --seed + k
    common = ("--seeds", "6", "--size", "12", "--steps", "3", "--samplers", "euler", "--configs", "ours/logsnr_uniform")
    run_script("quality_per_nfe.py", *common, "--batches", "2", "--batch-calls", "--output", str(tmp_path / "calls.json"))
    run_script("quality_per_nfe.py", *common, "--seed", "1", "--output", str(tmp_path / "second.json"))
    (calls,) = json.loads((tmp_path / "calls.json").read_text())["records"]
    (second,) = json.loads((tmp_path / "second.json").read_text())["records"]
    assert calls["batch_calls"] is True and len(calls["w1_batches"]) == 2
    assert calls["w1_batches"][1] == second["w1_batches"][0]
    assert calls["w1_batches"][0] != calls["w1_batches"][1]


def test_hook_overhead_times_every_hook_against_the_unet(tmp_path):
    output = tmp_path / "hooks.json"
    text = run_script("hook_overhead.py", "--quick", "--output", str(output))
    result = json.loads(output.read_text())["latents"]["tiny"]
    for hook in ("snr0_mask", "rescale_cfg", "first_step"):
        assert result[hook]["ours"]["median"] > 0 and result[hook]["ours"]["iqr"] >= 0
    assert result["unet_evaluation"]["median"] > 0 and result["ours_class"].startswith("ZSNRSampling")
    assert math.isclose(result["added_per_step"], sum(result[h]["added"] for h in ("snr0_mask", "rescale_cfg", "first_step")))
    assert "| tiny 4x16x16 | rescale_cfg |" in text and "all hooks" in text
