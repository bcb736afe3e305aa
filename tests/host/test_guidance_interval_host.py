"""ZSNRGuidanceInterval inside the real host: plain CFG inside the interval, the conditional
prediction outside it, λ read per model family, SNR 0 outside by default, chaining with post-CFG
functions and the host's cfg-function slot, no host-device synchronisation per step."""
from __future__ import annotations

import math

import pytest
import torch
from zsnr_host_helpers import SyncCounter
from zsnr_rescale_helpers import (
    SHIFT,
    base_model,
    host_cfg_function,
    host_rescale,
    make_setup,
    ours,
    recorded_predictions,
    run,
    shift_and_squash,
    synthetic,
    table_sigmas,
    with_post_cfg,
)

pytestmark = pytest.mark.host


@pytest.fixture(scope="module")
def setup(host):
    return make_setup(host)


def interval(host, model, lambda_min=-4.0, lambda_max=30.0):
    return host.node["ZSNRGuidanceInterval"].execute(model=model, lambda_min=lambda_min, lambda_max=lambda_max).result[0]


def log_snr_at(model, timestep):
    sigma = float(model.get_model_object("model_sampling").sigmas[timestep])
    return -2 * math.log(sigma)  # eps/v model, sigma_data 1: SNR = 1/sigma²


# --- inside: plain CFG; outside: CFG 1 ---------------------------------------------------------------

@pytest.mark.parametrize("prediction", ["epsilon", "v_prediction"])
def test_plain_cfg_inside_and_the_conditional_prediction_outside(host, setup, prediction):
    model = setup["models"][prediction]
    boundary = log_snr_at(model, 500)
    limited = interval(host, model, lambda_min=boundary)  # steps noisier than t = 500 are unguided
    for timestep in (500, 300, 80):  # λ >= boundary: inside, bit for bit plain CFG
        sigmas = table_sigmas(model, [timestep])
        assert torch.equal(run(setup, limited, sigmas), run(setup, model, sigmas)), timestep
    for timestep in (501, 900, 999):
        sigmas = table_sigmas(model, [timestep])
        conditional = run(setup, model, sigmas, cfg=1.0)
        torch.testing.assert_close(run(setup, limited, sigmas), conditional, rtol=1e-6, atol=1e-6)
        assert (run(setup, model, sigmas) - conditional).abs().max() > 1e-3  # guidance was there to remove


def test_upper_bound_unguides_the_clean_steps(host, setup):
    model = setup["models"]["v_prediction"]
    limited = interval(host, model, lambda_min=-30.0, lambda_max=log_snr_at(model, 300))
    clean, noisy = table_sigmas(model, [100]), table_sigmas(model, [700])
    torch.testing.assert_close(run(setup, limited, clean), run(setup, model, clean, cfg=1.0), rtol=1e-6, atol=1e-6)
    assert torch.equal(run(setup, limited, noisy), run(setup, model, noisy))


def test_unbounded_interval_is_plain_cfg_over_a_sampling(host, setup):
    model = setup["models"]["v_prediction"]
    sigmas = table_sigmas(model, [800, 500, 200])
    euler = setup["samplers"].ksampler("euler")
    assert torch.equal(run(setup, interval(host, model, -30.0, 30.0), sigmas, sampler=euler),
                       run(setup, model, sigmas, sampler=euler))


# --- SNR 0 ---------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def exact_zsnr_model(host, setup):
    return host.node["ZeroTerminalSNR"].execute(model=setup["reference"]("v_prediction", "scaled_linear_zsnr"),
                                                terminal="exact").result[0]


def test_snr_zero_step_is_unguided_by_default_and_guided_without_a_lower_bound(host, setup, exact_zsnr_model):
    model = exact_zsnr_model
    sigmas = [float(model.get_model_object("model_sampling").sigmas[-1]), 0.0]
    conditional, plain = run(setup, model, sigmas, cfg=1.0), run(setup, model, sigmas)
    default = host.node["ZSNRGuidanceInterval"].execute(model=model).result[0]
    torch.testing.assert_close(run(setup, default, sigmas), conditional, rtol=1e-6, atol=1e-6)
    assert torch.equal(run(setup, interval(host, model, lambda_min=-30.0), sigmas), plain)
    # any finite lower bound leaves SNR 0 (λ = -inf) out: the same as the rescale's unguided terminal step
    only_snr0_off = run(setup, interval(host, model, lambda_min=-29.9), sigmas)
    rescale_unguided = run(setup, ours(host, model, multiplier=0.0, terminal_step="unguided"), sigmas)
    torch.testing.assert_close(only_snr0_off, rescale_unguided, rtol=1e-6, atol=1e-6)
    assert (plain - conditional).abs().max() > 1e-3


# --- other families ------------------------------------------------------------------------------------

def test_flow_model_log_snr_is_two_log_signal_over_noise(host, setup):
    model = base_model(host, "FLOW")
    record = recorded_predictions(setup, model, [0.6, 0.0])
    lam = 2 * math.log(0.4 / 0.6)  # (signal, noise) = (1 - s, s)
    plain = host_cfg_function(model, record)
    torch.testing.assert_close(host_cfg_function(interval(host, model, lambda_min=lam - 0.01), record), plain,
                               rtol=0, atol=0)
    torch.testing.assert_close(host_cfg_function(interval(host, model, lambda_min=lam + 0.01), record),
                               record["cond_denoised"].double(), rtol=0, atol=0)


def test_edm_model_log_snr_uses_sigma_data(host, setup):
    model = base_model(host, "EDM", sigma_data=0.5)
    cond, uncond, x = (t.double() for t in synthetic((2, 3, 16, 16), 40))
    sigma = 1.7
    lam = 2 * math.log(0.5 / sigma)  # SNR = sigma_data²/sigma²
    record = {"cond_denoised": cond, "uncond_denoised": uncond, "input": x, "sigma": torch.full((2,), sigma,
              dtype=torch.float64), "cond": setup["positive"], "uncond": setup["negative"]}
    torch.testing.assert_close(host_cfg_function(interval(host, model, lambda_min=lam - 0.01), record),
                               host_cfg_function(model, record), rtol=0, atol=0)
    torch.testing.assert_close(host_cfg_function(interval(host, model, lambda_min=lam + 0.01), record), cond,
                               rtol=0, atol=0)


# --- chaining --------------------------------------------------------------------------------------------

def test_chains_with_another_post_cfg_function_in_graph_order(host, setup):
    model = setup["models"]["v_prediction"]
    inside, outside = table_sigmas(model, [300]), table_sigmas(model, [900])
    boundary = log_snr_at(model, 500)
    other_then_interval = interval(host, with_post_cfg(model, shift_and_squash), lambda_min=boundary)
    interval_then_other = with_post_cfg(interval(host, model, lambda_min=boundary), shift_and_squash)
    plain, conditional = run(setup, model, inside), run(setup, model, outside, cfg=1.0)
    # inside: the other node's result passes unchanged (or the other node sees plain CFG)
    torch.testing.assert_close(run(setup, other_then_interval, inside), 0.9 * plain + SHIFT, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(run(setup, interval_then_other, inside), 0.9 * plain + SHIFT, rtol=1e-6, atol=1e-6)
    # outside: guidance before the interval node is off; a node after it still acts
    torch.testing.assert_close(run(setup, other_then_interval, outside), conditional, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(run(setup, interval_then_other, outside), 0.9 * conditional + SHIFT,
                               rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("host_first", [True, False])
def test_switches_off_the_host_cfg_function_slot_outside(host, setup, host_first):
    model = setup["models"]["epsilon"]
    inside, outside = table_sigmas(model, [300]), table_sigmas(model, [900])
    boundary = log_snr_at(model, 500)
    if host_first:
        combined = interval(host, host_rescale(host, model), lambda_min=boundary)
    else:
        combined = host_rescale(host, interval(host, model, lambda_min=boundary))
    torch.testing.assert_close(run(setup, combined, inside), run(setup, host_rescale(host, model), inside),
                               rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(run(setup, combined, outside), run(setup, model, outside, cfg=1.0),
                               rtol=1e-6, atol=1e-6)
    assert (run(setup, host_rescale(host, model), inside) - run(setup, model, inside)).abs().max() > 1e-3


def test_two_interval_nodes_guide_on_the_intersection(host, setup):
    model = setup["models"]["v_prediction"]
    first, second = log_snr_at(model, 700), log_snr_at(model, 300)
    both = interval(host, interval(host, model, lambda_min=first), lambda_min=-30.0, lambda_max=second)
    for timestep, guided in ((800, False), (500, True), (200, False)):
        sigmas = table_sigmas(model, [timestep])
        expected = run(setup, model, sigmas, cfg=1.0 if not guided else 7.5)
        torch.testing.assert_close(run(setup, both, sigmas), expected, rtol=1e-6, atol=1e-6)


# --- contract --------------------------------------------------------------------------------------------

def test_input_model_is_not_mutated(host, setup):
    model = setup["models"]["v_prediction"]
    before = list(model.model_options.get("sampler_post_cfg_function", []))
    patched = interval(host, model)
    assert patched is not model
    assert model.model_options.get("sampler_post_cfg_function", []) == before
    assert len(patched.model_options["sampler_post_cfg_function"]) == len(before) + 1


@pytest.mark.parametrize(("name", "value"), [("lambda_min", -31.0), ("lambda_max", 30.5), ("lambda_min", math.nan)])
def test_bad_input_names_node_and_input(host, setup, name, value):
    with pytest.raises(ValueError, match=rf"ZSNRGuidanceInterval: input '{name}'"):
        interval(host, setup["models"]["v_prediction"], **{name: value})


def test_empty_interval_is_refused(host, setup):
    with pytest.raises(ValueError, match=r"ZSNRGuidanceInterval: input 'lambda_min'"):
        interval(host, setup["models"]["v_prediction"], lambda_min=1.0, lambda_max=0.0)
    with pytest.raises(ValueError, match=r"ZSNRGuidanceInterval: input 'model'"):
        host.node["ZSNRGuidanceInterval"].execute(model=None, lambda_min=-4.0, lambda_max=30.0)


def test_no_host_device_synchronisation_per_step(host, setup, exact_zsnr_model):
    model = interval(host, exact_zsnr_model)
    record = recorded_predictions(setup, exact_zsnr_model, table_sigmas(exact_zsnr_model, [500]))
    host_cfg_function(model, record, dtype=torch.float32)  # anything done once per sampling happens here
    with SyncCounter() as plain_counter:
        host_cfg_function(exact_zsnr_model, record, dtype=torch.float32)
    with SyncCounter() as counter:
        for _ in range(4):
            host_cfg_function(model, record, dtype=torch.float32)
    assert counter.scalar_reads == 4 * plain_counter.scalar_reads
