"""The prediction check (samplers/prediction_check.py) on the two trained networks of
ZSNRTrainedReferenceModel, declared right and wrong, and a weight patch that really changes a
trained network's output through our clones. Counts and coefficients printed (README)."""
from __future__ import annotations

import sys

import pytest
import torch
from zsnr_host_helpers import condition, ksample, v_adapter, zero_snr

pytestmark = pytest.mark.host

TRAINED_AS = {"flawed": "epsilon", "fixed": "v_prediction"}


def trained(host, recipe):
    return host.node["ZSNRTrainedReferenceModel"].execute(recipe=recipe).result[0]


def sample(host, model, seeds=8, cfg=3.0, sampler="euler"):
    return ksample(host, model, sampler, "trailing", steps=4, seeds=seeds, size=32, cfg=cfg,
                   positive=condition(host, "dark"), negative=condition(host, "all"))


def test_mismatch_caught_on_both_trained_networks(host):
    counts = sys.modules[f"{host.pack.__name__}.nodes.prediction_check"].VERDICT_COUNTS
    lines, wrong = [], []
    for recipe, trained_as in TRAINED_AS.items():
        setups = {"as loaded": trained(host, recipe)}
        if recipe == "fixed":  # its declared host clamp, made exact
            setups["ZeroTerminalSNR exact"] = zero_snr(host, setups["as loaded"])
        for setup, base in setups.items():
            for declared in TRAINED_AS.values():
                model = v_adapter(host, base, declared)
                counts.clear()
                sample(host, model)
                verdict = model.get_model_object("model_sampling").zsnr_last_verdict
                lines.append(f"{recipe} ({setup}) declared {declared}: c = {verdict.coefficient:.2f} → {verdict.looks_like}")
                if sum(counts.values()) != 1 or verdict.looks_like != trained_as:
                    wrong.append(lines[-1])
    print("\nprediction check on the trained pair:\n  " + "\n  ".join(lines))
    assert not wrong, wrong


def test_a_weight_patch_on_a_trained_network_survives_our_clones(host):
    """A LoRA-style diff patch (ModelPatcher.add_patches, the host's LoraLoader path) on a real
    weight: kept through ZeroTerminalSNR / VPredictionAdapter / ZSNRRescaleCFG and applied when
    sampling; the unpatched model is untouched."""
    base = trained(host, "fixed")
    key = next(k for k, v in base.model.state_dict().items() if k.endswith("out.2.weight"))
    patched = base.clone()
    patched.add_patches({key: (torch.full_like(base.model.state_dict()[key], 0.02),)}, 1.0)

    def ours(model):
        model = v_adapter(host, zero_snr(host, model))
        return host.node["ZSNRRescaleCFG"].execute(model=model, multiplier=0.7).result[0]

    with_patch, without = ours(patched), ours(base)
    assert key in with_patch.patches and key not in without.patches and key not in base.patches
    assert not torch.allclose(sample(host, with_patch, seeds=2), sample(host, without, seeds=2), atol=1e-3)
    assert torch.equal(sample(host, without, seeds=2), sample(host, ours(base), seeds=2))
