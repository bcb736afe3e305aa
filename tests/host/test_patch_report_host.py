"""The report ZeroTerminalSNR and VPredictionAdapter show on the node (nodes/patch_report.py), for
the checkpoint kinds of README "Which node for my checkpoint", each built as the host's loader
builds it: the host's own model config class, its model_type() read from the checkpoint's marker
keys (comfy/supported_models.py: SD 2.x's weight statistic, `v_pred` + `ztsnr`, `edm_vpred.*`), and
the family's BaseModel with its sampling object (get_model); no network is built (disable_unet_model_creation), since the
report only reads the schedule and the prediction."""
from __future__ import annotations

import pytest
import torch

pytestmark = pytest.mark.host


def checkpoint_model(config_name: str, markers: dict):
    import comfy.model_patcher
    import comfy.supported_models as supported

    config_class = getattr(supported, config_name)
    config = config_class(dict(config_class.unet_config, in_channels=4, disable_unet_model_creation=True))
    model = config.get_model(markers)  # the loader's call: model_type() from the keys, the family's BaseModel
    return comfy.model_patcher.ModelPatcher(model, torch.device("cpu"), torch.device("cpu"))


SD2_V_STATISTIC = "output_blocks.11.1.transformer_blocks.0.norm1.bias"  # SD20.model_type: std > 0.09 is v
KINDS = {
    "sd15_epsilon": ("SD15", {}),
    "sd2_v": ("SD20", {SD2_V_STATISTIC: torch.linspace(-1, 1, 320)}),
    "noobai_vpred_ztsnr": ("SDXL", {"v_pred": torch.tensor([]), "ztsnr": torch.tensor([])}),
    "cosxl_edm_vpred": ("SDXL", {"edm_vpred.sigma_max": torch.tensor(120.0), "edm_vpred.sigma_min": torch.tensor(0.002)}),
    "sd3_flow": ("SD3", {}),
}


def report(host, node: str, model, **inputs) -> str:
    output = host.node[node].execute(model=model, **inputs)
    return output.ui["zsnr_report"][0]


def test_sd15_epsilon(host):
    text = report(host, "ZeroTerminalSNR", checkpoint_model(*KINDS["sd15_epsilon"]), terminal="exact")
    assert text.startswith("ZeroTerminalSNR: SD15 model, sampling ModelSamplingDiscrete/EPS (epsilon)")
    assert "scaled_linear (SD) 0.00085 → 0.012, 1000 timesteps" in text
    assert "terminal SNR: 0.00468 → exactly 0" in text and "sigma_max: 14.61 → ∞" in text
    assert "warning: an epsilon-prediction model" in text and "VPredictionAdapter (prediction = v_prediction)" in text


def test_sd2_v(host):
    model = checkpoint_model(*KINDS["sd2_v"])
    text = report(host, "ZeroTerminalSNR", model, terminal="clamp_diffusers")
    assert "SD20 model" in text and "(v_prediction)" in text and "rescale already applied: none" in text
    assert f"terminal SNR: 0.00468 → {2.0**-24 / (1 - 2.0**-24):.3g}" in text and "sigma_max: 14.61 → 4096" in text
    assert "warning" not in text


def test_noobai_style_checkpoint_with_the_hosts_zsnr_already_on(host):
    model = checkpoint_model(*KINDS["noobai_vpred_ztsnr"])
    text = report(host, "ZeroTerminalSNR", model, terminal="exact")
    assert "SDXL model" in text and "(v_prediction)" in text
    assert "rescale already applied: the host's zsnr option" in text
    assert "terminal SNR: 4.9e-08 → exactly 0" in text and "sigma_max: 4519 → ∞" in text
    again = report(host, "VPredictionAdapter", host.node["ZeroTerminalSNR"].execute(model=model).result[0],
                   prediction="v_prediction")
    assert "rescale already applied: zsnr (exact)" in again and "terminal SNR: exactly 0 → exactly 0" in again


def test_edm_v_prediction_is_refused_with_a_clear_message(host):
    model = checkpoint_model(*KINDS["cosxl_edm_vpred"])
    for node, inputs in (("ZeroTerminalSNR", {"terminal": "exact"}), ("VPredictionAdapter", {"prediction": "epsilon"})):
        with pytest.raises(ValueError, match=rf"{node}.*ModelSamplingContinuousEDM/V_PREDICTION.*continuous-sigma \(EDM\)"):
            host.node[node].execute(model=model, **inputs)


def test_flow_model_is_returned_unchanged_and_says_so(host):
    model = checkpoint_model(*KINDS["sd3_flow"])
    output = host.node["ZeroTerminalSNR"].execute(model=model, terminal="exact")
    assert output.result[0] is model
    text = output.ui["zsnr_report"][0]
    assert "SD3 model" in text and "flow_velocity" in text and "already ends at SNR 0: returned unchanged" in text
    with pytest.raises(ValueError, match="VPredictionAdapter.*flow-matching"):
        host.node["VPredictionAdapter"].execute(model=model, prediction="v_prediction")
