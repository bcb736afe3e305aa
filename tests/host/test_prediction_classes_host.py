"""Prediction classes newer than ComfyUI 0.3.75, on the host that has them: CogVideoX's
V_PREDICTION_DDPM under ZeroTerminalSNR / VPredictionAdapter / ZSNRRescaleCFG, IMG_TO_IMG_FLOW and
CONST.noise_scale under ZSNRRescaleCFG. The formulas checked are upstream comfy/model_sampling.py's,
written out here from their docstrings; a host without the class skips with the reason."""
from __future__ import annotations

import logging
import math

import pytest
import torch
from zsnr_host_helpers import v_adapter, zero_snr
from zsnr_rescale_helpers import (
    base_model,
    direct,
    host_cfg_function,
    host_rescale,
    make_setup,
    ours,
    recorded_predictions,
    synthetic,
    written_out_rescale,
)

pytestmark = pytest.mark.host
REFERENCE_SCHEDULE = {"beta_schedule": "linear", "linear_start": 0.00085, "linear_end": 0.012}


@pytest.fixture(scope="module")
def setup(host):
    return make_setup(host)


def host_class(name: str):
    import comfy.model_sampling

    if not hasattr(comfy.model_sampling, name):
        pytest.skip(f"this host has no {name} (added after ComfyUI 0.3.75)")
    return getattr(comfy.model_sampling, name)


@pytest.fixture
def cogvideo_model(host):
    """A real host BaseModel of type V_PREDICTION_DDPM with CogVideoX's `zsnr: True` setting."""
    host_class("V_PREDICTION_DDPM")
    return base_model(host, "V_PREDICTION_DDPM", zsnr=True, **REFERENCE_SCHEDULE)


def test_v_prediction_ddpm_keeps_its_input_and_formula_and_is_exact_at_snr_zero(host, cogvideo_model, caplog):
    ddpm = host_class("V_PREDICTION_DDPM")
    with caplog.at_level(logging.WARNING, logger="zsnr"):
        patched = zero_snr(host, cogvideo_model)
    assert "epsilon" not in caplog.text  # it is a v model, not "reported as epsilon"
    sampling = patched.get_model_object("model_sampling")
    assert isinstance(sampling, ddpm) and sampling.zsnr_prediction == "v_prediction"
    generator = torch.Generator().manual_seed(3)
    x, v = torch.randn(2, 3, 8, 8, generator=generator), torch.randn(2, 3, 8, 8, generator=generator)
    for t in (100, 500, 900):
        sigma = sampling.sigmas[t].expand(2)
        s = float(sampling.sigmas[t])
        # CogVideoX: the network sees the raw sample, x0 = x/sqrt(s²+1) - v·s/sqrt(s²+1)
        assert torch.equal(sampling.calculate_input(sigma, x), x)
        expected = x / math.sqrt(s * s + 1) - v * s / math.sqrt(s * s + 1)
        torch.testing.assert_close(sampling.calculate_denoised(sigma, v, x), expected, rtol=1e-5, atol=1e-6)
    top = torch.full((2,), sampling.zsnr_terminal_sigma)
    assert torch.equal(sampling.calculate_denoised(top, v, x * float(top[0])), -v)


def test_v_prediction_ddpm_clamp_of_the_host_is_recognised(host, cogvideo_model):
    clamped = v_adapter(host, cogvideo_model)
    sampling = clamped.get_model_object("model_sampling")
    assert sampling.zsnr_terminal == "clamp_comfy"  # the host already applied its zsnr option
    assert isinstance(sampling, host_class("V_PREDICTION_DDPM"))


def test_v_prediction_ddpm_cannot_be_declared_epsilon(host, cogvideo_model):
    with pytest.raises(ValueError, match="VPredictionAdapter: input 'prediction'.*V_PREDICTION_DDPM"):
        v_adapter(host, cogvideo_model, prediction="epsilon")


def test_rescale_cfg_on_v_prediction_ddpm_rescales_the_networks_own_v(host, setup, cogvideo_model):
    cond, uncond, x = (t.double() for t in synthetic((2, 3, 16, 16), 41))
    s = 2.5
    a, b = 1 / math.sqrt(s * s + 1), s / math.sqrt(s * s + 1)

    def v_of(x0):  # inverse of x0 = a·x - b·v, x the raw sample the network sees
        return (a * x - x0) / b

    v_final = written_out_rescale(v_of(cond), v_of(uncond), 7.5, 0.7, (1, 2, 3))
    result = direct(setup, ours(host, cogvideo_model, space="auto"), cond, uncond, x, s)
    torch.testing.assert_close(result, a * x - b * v_final, rtol=1e-9, atol=1e-9)


def test_rescale_cfg_on_img_to_img_flow_is_x0(host, setup):
    host_class("IMG_TO_IMG_FLOW")
    model = base_model(host, "IMG_TO_IMG_FLOW")
    cond, uncond, x = (t.double() for t in synthetic((2, 3, 16, 16), 42))
    auto = direct(setup, ours(host, model, space="auto"), cond, uncond, x, 0.5)
    torch.testing.assert_close(auto, written_out_rescale(cond, uncond, 7.5, 0.7, (1, 2, 3)), rtol=1e-9, atol=1e-9)


def test_rescale_cfg_on_a_flow_model_with_noise_scale_matches_the_hosts_flow_branch(host, setup):
    model = base_model(host, "FLOW")
    sampling = model.get_model_object("model_sampling")
    if not hasattr(sampling, "set_noise_scale"):
        pytest.skip("this host's flow sampling has no noise_scale (added after ComfyUI 0.3.75)")
    sampling.set_noise_scale(0.5)
    record = recorded_predictions(setup, model, [0.6, 0.0])
    ours_x0 = host_cfg_function(ours(host, model, space="x0"), record)
    hosts = host_cfg_function(host_rescale(host, model), record)
    torch.testing.assert_close(ours_x0, hosts, rtol=1e-6, atol=1e-6)
    # the velocity the network predicts, (x - x0)/sigma whatever noise_scale drew x
    x, sigma = record["input"].double(), float(record["sigma"][0])
    x0_cond, x0_uncond = record["cond_denoised"].double(), record["uncond_denoised"].double()
    velocity = written_out_rescale((x - x0_cond) / sigma, (x - x0_uncond) / sigma, 7.5, 0.7, (1, 2, 3))
    auto = host_cfg_function(ours(host, model, space="auto"), record)
    torch.testing.assert_close(auto, x - sigma * velocity, rtol=1e-9, atol=1e-9)
