"""The prediction check at the first step (nodes/prediction_check.py, samplers/prediction_check.py)
on the reference model through the stock KSampler path: every mismatch caught, no correct setup
warned, at most one warning per model, no extra model call, the result unchanged. The counts are
printed (README, "Which node for my checkpoint")."""
from __future__ import annotations

import logging
import sys

import pytest
import torch
from zsnr_host_helpers import (
    EvaluationCounter,
    condition,
    host_zsnr_clamp,
    ksample,
    reference,
    v_adapter,
    zero_snr,
)

pytestmark = pytest.mark.host

SCHEDULES = ("scaled_linear", "scaled_linear_zsnr", "linear", "cosine")
TRAINED = ("v_prediction", "epsilon")
SETUPS = ("exact", "clamp_comfy", "host_zsnr", "as_trained")
HOST_NAMES = {"v_prediction": "v_prediction", "epsilon": "eps"}


def pack_module(host, name):
    return sys.modules[f"{host.pack.__name__}.{name}"]


def setup_model(host, schedule, trained, setup):
    """A reference model trained as `trained` on `schedule`, prepared by `setup` (None if refused)."""
    base = reference(host, schedule, trained)
    try:
        if setup == "host_zsnr":
            return host_zsnr_clamp(base, HOST_NAMES[trained])
        return base if setup == "as_trained" else zero_snr(host, base, setup)
    except ValueError:  # ZeroTerminalSNR refuses a clamp that does not fit (DDPM linear)
        return None


def verdicts_of(host, model, batch, **options):
    counts = pack_module(host, "nodes.prediction_check").VERDICT_COUNTS
    counts.clear()
    ksample(host, model, options.get("sampler", "euler"), options.get("scheduler", "simple"),
            steps=options.get("steps", 3), seeds=batch, size=8, cfg=options.get("cfg", 3.0),
            negative=condition(host, "dark"))
    return dict(counts), getattr(model.get_model_object("model_sampling"), "zsnr_last_verdict", None)


def test_every_mismatch_caught_and_no_false_alarm(host):
    caught = missed = correct = false_alarms = refused = 0
    failures, coefficients = [], {"epsilon": [], "v_prediction": []}
    for schedule in SCHEDULES:
        for trained in TRAINED:
            for setup in SETUPS:
                prepared = setup_model(host, schedule, trained, setup)
                if prepared is None:
                    refused += 1
                    continue
                for declared in TRAINED:
                    model = v_adapter(host, prepared, declared)
                    for batch in (1, 16):
                        counts, verdict = verdicts_of(host, model, batch)
                        if verdict is not None:
                            coefficients[trained].append(verdict.coefficient)
                        label = (schedule, trained, setup, declared, batch, counts)
                        if sum(counts.values()) != 1:
                            failures.append(("not judged exactly once", label))
                        elif declared != trained:
                            caught += counts.get((declared, trained), 0)
                            missed += counts.get((declared, declared), 0)
                        else:
                            correct += counts.get((declared, declared), 0)
                            false_alarms += sum(n for key, n in counts.items() if key[0] != key[1])
    print(f"\nprediction check: {caught} of {caught + missed} mismatches caught, {false_alarms} false alarms in "
          f"{correct + false_alarms} correct setups ({len(SCHEDULES)} schedules × {len(TRAINED)} trained × "
          f"{len(SETUPS)} setups × 2 declared × batch 1/16; {refused} setups refused by ZeroTerminalSNR); noise coefficient c of epsilon networks "
          f"{min(coefficients['epsilon']):.2f}..{max(coefficients['epsilon']):.2f}, of v networks "
          f"{min(coefficients['v_prediction']):.2f}..{max(coefficients['v_prediction']):.2f} (threshold 0.5)")
    assert not failures, failures[:5]
    assert missed == 0 and false_alarms == 0
    assert caught == correct > 0


def test_warns_once_per_model_names_the_node_and_never_changes_the_result(host, caplog, monkeypatch):
    model = v_adapter(host, zero_snr(host, reference(host, "scaled_linear", "v_prediction")), "epsilon")
    with caplog.at_level(logging.WARNING, logger="zsnr"):
        first = ksample(host, model, "euler", "simple", steps=4, seeds=2, size=8)
        ksample(host, model, "euler", "simple", steps=4, seeds=2, size=8)
    warnings = [r.getMessage() for r in caplog.records if "prediction check" in r.getMessage()]
    assert len(warnings) == 1, warnings
    assert "VPredictionAdapter" in warnings[0] and "prediction = v_prediction" in warnings[0]
    # the same sampling without the check: bit-identical, and the same number of network calls
    with_counter, without_counter = EvaluationCounter(), EvaluationCounter()
    with_check = ksample(host, with_counter.attach(model), "euler", "simple", steps=4, seeds=2, size=8)
    monkeypatch.setattr(pack_module(host, "nodes.zsnr_sampling").ZSNRSamplingMixin, "check_first_output",
                        lambda *args: None)
    without_check = ksample(host, without_counter.attach(model), "euler", "simple", steps=4, seeds=2, size=8)
    assert torch.equal(with_check, without_check) and torch.equal(first, with_check)
    assert with_counter.calls == without_counter.calls > 0


def test_not_judged_away_from_the_top(host):
    """img2img (denoise < 1) and a lowered first sigma start where the statistic cannot decide."""
    model = v_adapter(host, reference(host, "scaled_linear", "v_prediction"), "epsilon")
    counts = pack_module(host, "nodes.prediction_check").VERDICT_COUNTS
    counts.clear()
    latent = {"samples": torch.zeros(2, 3, 8, 8)}
    host.nodes.common_ksampler(model, 0, 10, 1.0, "euler", "simple", condition(host), condition(host), latent,
                               denoise=0.5)
    assert dict(counts) == {}
    sigmas = torch.tensor([2.0, 1.0, 0.0])
    sampler = host.node["KSamplerSelect"].execute("euler").result[0]
    noise = host.node["RandomNoise"].execute(0).result[0]
    guider = host.node["BasicGuider"].execute(model, condition(host)).result[0]
    host.node["SamplerCustomAdvanced"].execute(noise, guider, sampler, sigmas, latent)
    assert dict(counts) == {}
