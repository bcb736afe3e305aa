"""Checkpoint detection (issue #25; nodes/model_detection.py, samplers/prediction_check.py,
samplers/terminal_detect.py) through the stock KSampler path, on models whose truth is known:
the reference model (every trained schedule x prediction), the trained networks, and UNets with
random weights, which must never get a confident verdict. The files' keys are "lost" (the host
samples them as SD's default, epsilon without zsnr) unless a test says otherwise. Extra model
calls are counted with a DIFFUSION_MODEL wrapper: euler at cfg 1 makes one call per step."""
from __future__ import annotations

import logging
import sys

import pytest
import torch
from zsnr_host_helpers import EvaluationCounter, condition, host_zsnr_clamp, reference, v_adapter, zero_snr

pytestmark = pytest.mark.host

STEPS = 2
ZERO, DECLARED, UNDECIDED = "zero terminal SNR", "declared schedule", "cannot tell"


def keys_lost(model):
    import comfy_extras.nodes_model_advanced as advanced

    return advanced.ModelSamplingDiscrete().patch(model, "eps", False)[0]


def extra_calls(host, model, positive=None, size=32, batch=1, denoise=1.0, seed=0):
    """(model calls beyond the sampler's STEPS, samples)."""
    counter = EvaluationCounter()
    positive = positive or condition(host)
    latent = {"samples": torch.zeros(batch, 3, size, size)}
    out = host.nodes.common_ksampler(counter.attach(model), seed, STEPS, 1.0, "euler", "simple", positive, positive,
                                     latent, denoise=denoise)
    return counter.calls - STEPS, out[0]["samples"]


def detection(model):
    return model.get_model_object("model_sampling").zsnr_detection


def trained(host, recipe):
    return sys.modules[f"{host.pack.__name__}.nodes.trained_model"].build_trained_model(recipe)


def colour(host):
    return host.node["ZSNRColourClass"].execute(hue="none").result[0]


def random_unet(host, seed):
    """The colour recipe's UNet at torch's default initialisation (tools/train_reference_unet.py)."""
    import train_reference_unet

    model = trained(host, "colour_fixed")
    torch.manual_seed(seed)
    fresh = train_reference_unet.build_unet(num_classes=len(model.model.zsnr_trained_reference["classes"]))
    model.model.diffusion_model.load_state_dict(fresh.state_dict())
    return model


@pytest.mark.parametrize("dataset", ["brightness_ramp", "colour_blobs"])
def test_reference_model_every_schedule_and_prediction(host, dataset):
    wrong = []
    for schedule in ("scaled_linear", "scaled_linear_zsnr", "linear", "cosine"):
        for prediction in ("v_prediction", "epsilon"):
            model = zero_snr(host, v_adapter(host, keys_lost(reference(host, schedule, prediction, dataset)), "auto"), "auto")
            extra, samples = extra_calls(host, model)
            found = detection(model)
            sampling = model.get_model_object("model_sampling")
            terminal = found.terminal.trained_for if found.terminal else None
            if prediction == "epsilon":
                allowed_terminals, expected_table = (None,), None
            elif schedule == "scaled_linear_zsnr":
                allowed_terminals, expected_table = (ZERO,), "exact"
            elif schedule == "scaled_linear":
                allowed_terminals, expected_table = (DECLARED,), None
            else:  # schedules that end near SNR 0 themselves: never "zero terminal SNR"
                allowed_terminals, expected_table = (DECLARED, UNDECIDED), None
            label = (schedule, prediction, found.prediction.looks_like, terminal, extra, sampling.zsnr_terminal)
            if (found.prediction.looks_like != prediction or sampling.zsnr_prediction != prediction
                    or terminal not in allowed_terminals or sampling.zsnr_terminal != expected_table
                    or extra != 1 or found.pending or not torch.isfinite(samples).all()):
                wrong.append(label)
    assert not wrong, wrong


def test_prediction_auto_costs_no_call_from_the_top_and_samples_as_the_declared_node(host, caplog):
    base = reference(host, "scaled_linear_zsnr", "v_prediction")
    auto = zero_snr(host, v_adapter(host, keys_lost(base), "auto"), "exact")
    declared = zero_snr(host, v_adapter(host, keys_lost(base), "v_prediction"), "exact")
    with caplog.at_level(logging.WARNING, logger="zsnr"):
        extra_auto, samples_auto = extra_calls(host, auto, batch=4)
    extra_declared, samples_declared = extra_calls(host, declared, batch=4)
    assert (extra_auto, extra_declared) == (0, 0)
    assert torch.equal(samples_auto, samples_declared)  # the first call's x0 already used the detected class
    assert detection(auto).prediction.looks_like == "v_prediction" and "first model call" in detection(auto).lines[0]
    warnings = [r.getMessage() for r in caplog.records if "prediction: detected" in r.getMessage()]
    assert len(warnings) == 1 and "keys say epsilon" in warnings[0] and "v_prediction" in warnings[0]
    assert extra_calls(host, auto, batch=4)[0] == 0


def test_a_lower_start_probes_once_per_model(host):
    base = keys_lost(reference(host, "scaled_linear", "v_prediction"))
    model = v_adapter(host, base, "auto")
    assert extra_calls(host, model, denoise=0.5)[0] == 1
    assert detection(model).prediction.looks_like == "v_prediction"
    assert extra_calls(host, model, denoise=0.5)[0] == 0 and extra_calls(host, model)[0] == 0
    assert extra_calls(host, v_adapter(host, base, "auto"), denoise=0.5, batch=3)[0] == 1  # a new patch: once more


def test_terminal_auto_unchanged_samples_as_without_the_node(host):
    """A v network trained on SD's schedule: ZeroTerminalSNR(auto) decides 'unchanged' and moves the
    first sampling's sigmas (computed on the exact table) back to SD's table."""
    base = keys_lost(reference(host, "scaled_linear", "v_prediction"))
    auto = zero_snr(host, v_adapter(host, base, "v_prediction"), "auto")
    extra, samples = extra_calls(host, auto, batch=3)
    _, plain = extra_calls(host, v_adapter(host, base, "v_prediction"), batch=3)
    assert extra == 1 and auto.get_model_object("model_sampling").zsnr_terminal is None
    assert torch.allclose(samples, plain, atol=1e-4)
    assert torch.equal(extra_calls(host, auto, batch=3)[1], samples)  # later samplings: the same, no probe


@pytest.mark.parametrize("batch", [1, 16])
def test_trained_networks(host, batch):
    lines, wrong = [], []
    truth = {"flawed": ("epsilon", None), "fixed": ("v_prediction", ZERO), "colour_flawed": ("epsilon", None),
             "colour_fixed": ("v_prediction", ZERO), "colour_v_sd": ("v_prediction", DECLARED)}
    for recipe, (prediction, terminal) in truth.items():
        positive = colour(host) if recipe.startswith("colour") else condition(host)
        for denoise in (1.0, 0.5):
            alone = v_adapter(host, keys_lost(trained(host, recipe)), "auto")
            extra_alone = extra_calls(host, alone, positive, batch=batch, denoise=denoise)[0]
            both = zero_snr(host, v_adapter(host, keys_lost(trained(host, recipe)), "auto"), "auto")
            extra_both = extra_calls(host, both, positive, batch=batch, denoise=denoise)[0]
            found = detection(both)
            got_terminal = found.terminal.trained_for if found.terminal else None
            lines.append(f"{recipe} d{denoise}: {detection(alone).prediction.looks_like} (c "
                         f"{detection(alone).prediction.coefficient:.3f}), {got_terminal} (lambda "
                         f"{found.terminal.position if found.terminal else float('nan'):.2f}); extra {extra_alone}/{extra_both}")
            if (detection(alone).prediction.looks_like, found.prediction.looks_like, got_terminal) != (
                    prediction, prediction, terminal) or (extra_alone, extra_both) != (0 if denoise == 1 else 1, 1):
                wrong.append(lines[-1])
    print(f"\ntrained networks, batch {batch}:\n  " + "\n  ".join(lines))
    assert not wrong, wrong


def test_random_unet_cannot_tell(host):
    counts = sys.modules[f"{host.pack.__name__}.nodes.prediction_check"].VERDICT_COUNTS
    counts.clear()
    for seed in (0, 1):
        for batch, denoise in ((1, 1.0), (16, 0.5)):
            model = zero_snr(host, v_adapter(host, keys_lost(random_unet(host, seed)), "auto"), "auto")
            extra, samples = extra_calls(host, model, colour(host), batch=batch, denoise=denoise)
            found = detection(model)
            assert found.prediction.looks_like == UNDECIDED and found.prediction.reason, found.prediction
            assert found.terminal is None and "cannot tell" in found.lines[1], found.lines
            sampling = model.get_model_object("model_sampling")
            assert (sampling.zsnr_prediction, sampling.zsnr_terminal, extra) == ("epsilon", None, 1)
            declared_v = v_adapter(host, random_unet(host, seed), "auto")  # its keys say v (colour_fixed's)
            extra_calls(host, declared_v, colour(host), batch=batch, denoise=denoise)
            assert detection(declared_v).prediction.looks_like == UNDECIDED
            assert declared_v.get_model_object("model_sampling").zsnr_prediction == "v_prediction"
    assert not [key for key in counts if key[1] not in (key[0], UNDECIDED)]  # no confident verdict at all


def test_report_and_a_contradiction_with_the_keys(host, caplog):
    """The keys say zero terminal SNR (the host's zsnr option) on a network trained on SD's schedule."""
    wrong_keys = host_zsnr_clamp(trained(host, "colour_v_sd"), "v_prediction")
    model = host.node["ZeroTerminalSNR"].execute(model=wrong_keys, terminal="auto")
    report = model.ui["zsnr_report"][0]
    assert "terminal: auto" in report and "keys say zero terminal SNR" in report
    with caplog.at_level(logging.WARNING, logger="zsnr"):
        extra_calls(host, model.result[0], colour(host), batch=2)
    warnings = [r.getMessage() for r in caplog.records if "terminal: detected" in r.getMessage()]
    assert len(warnings) == 1, warnings
    assert "declared schedule: unchanged" in warnings[0] and "keys say zero terminal SNR" in warnings[0]
    assert "lambda" in warnings[0] and "margin" in warnings[0]
    sampling = model.result[0].get_model_object("model_sampling")
    assert sampling.zsnr_terminal is None and float(sampling.sigma_max) == pytest.approx(14.6146, rel=1e-3)


def test_what_the_host_checkpoint_saver_writes(host, tmp_path):
    """docs/detection.md §5: the host's CheckpointSave writes v_pred / predict_key from the model type
    it loaded, not from our sampling object, and ztsnr (v models only) from the sampling's zsnr."""
    import comfy_extras.nodes_model_merging as merging
    import safetensors

    def written(model, name):
        merging.save_checkpoint(model, filename_prefix=name, output_dir=str(tmp_path))
        path = next(tmp_path.glob(f"{name}_*.safetensors"))
        with safetensors.safe_open(str(path), "pt") as handle:
            return sorted(set(handle.keys()) & {"v_pred", "ztsnr"}), handle.metadata().get("modelspec.predict_key")

    loaded_v = trained(host, "fixed")  # loaded as V_PREDICTION with the host's zsnr (both keys)
    assert written(host_zsnr_clamp(loaded_v, "v_prediction"), "as_loaded") == (["v_pred", "ztsnr"], "v")
    lost_ztsnr = keys_lost_terminal(loaded_v)
    assert written(lost_ztsnr, "lost_ztsnr") == (["v_pred"], "v")
    assert written(zero_snr(host, lost_ztsnr, "exact"), "repaired") == (["v_pred", "ztsnr"], "v")
    loaded_eps = reference(host, "scaled_linear_zsnr", "epsilon")  # a file read as epsilon
    declared_v = zero_snr(host, v_adapter(host, loaded_eps, "v_prediction"), "exact")
    assert written(declared_v, "declared_v") == ([], "epsilon")  # our patch cannot change what it writes


def keys_lost_terminal(model):
    """A v file whose ztsnr key was lost: the host samples v without its zsnr option."""
    import comfy_extras.nodes_model_advanced as advanced

    return advanced.ModelSamplingDiscrete().patch(model, "v_prediction", False)[0]
