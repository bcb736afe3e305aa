"""ZSNRRescaleCFG inside the real host: equal to the host's RescaleCFG where both apply, chainable
with post-CFG functions and the cfg-function slot, right at SNR 0, on flow models and video latents."""
from __future__ import annotations

import math

import pytest
import torch
from zsnr_rescale_helpers import (
    SHIFT,
    base_model,
    direct,
    fixed_noise,
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
    written_out_rescale,
)

pytestmark = pytest.mark.host


@pytest.fixture(scope="module")
def setup(host):
    return make_setup(host)


INTERIOR = (900, 600, 300, 80)


# --- equal to the host's RescaleCFG -------------------------------------------------------------

@pytest.mark.parametrize("prediction", ["epsilon", "v_prediction"])
@pytest.mark.parametrize("timestep", INTERIOR)
def test_equals_host_rescale_cfg_at_interior_sigmas(host, setup, prediction, timestep):
    # float64 through the host's cfg_function: the two implementations agree to rounding. (In the
    # float32 sampling run the host's own formula loses digits at large sigma: 1.4e-5 at sigma 8.3
    # against a float64 evaluation, ours 7e-8; see the three-step test for the float32 run.)
    model = setup["models"][prediction]
    record = recorded_predictions(setup, model, table_sigmas(model, [timestep]))
    theirs = host_cfg_function(host_rescale(host, model), record)
    mine = host_cfg_function(ours(host, model), record)
    plain = host_cfg_function(model, record)
    torch.testing.assert_close(mine, theirs, rtol=1e-5, atol=1e-5)
    assert (mine - plain).abs().max() > 1e-3  # the rescale did something measurable (100x the tolerance)


@pytest.mark.parametrize("prediction", ["epsilon", "v_prediction"])
def test_equals_host_rescale_cfg_over_three_euler_steps(host, setup, prediction):
    model = setup["models"][prediction]
    sigmas = table_sigmas(model, [700, 400, 150])[:-1]  # stop at sigma(150): the last x0 would hide the steps
    euler = setup["samplers"].ksampler("euler")
    latent = 0.3 * fixed_noise(seed=5)
    theirs = run(setup, host_rescale(host, model), sigmas, sampler=euler, latent=latent)
    mine = run(setup, ours(host, model), sigmas, sampler=euler, latent=latent)
    plain = run(setup, model, sigmas, sampler=euler, latent=latent)
    torch.testing.assert_close(mine, theirs, rtol=1e-5, atol=1e-5)
    assert (mine - plain).abs().max() > 1e-3


def test_auto_space_is_v_for_eps_and_v_models(host, setup):
    for model in setup["models"].values():
        sigmas = table_sigmas(model, [500])
        torch.testing.assert_close(run(setup, ours(host, model, space="auto"), sigmas),
                                   run(setup, ours(host, model, space="v"), sigmas), rtol=0, atol=0)


# --- what must not change ------------------------------------------------------------------------

def test_multiplier_zero_and_cfg_one_leave_the_result_unchanged(host, setup):
    model = setup["models"]["v_prediction"]
    sigmas = table_sigmas(model, [500])
    assert torch.equal(run(setup, ours(host, model, multiplier=0.0), sigmas), run(setup, model, sigmas))
    assert torch.equal(run(setup, ours(host, model), sigmas, cfg=1.0), run(setup, model, sigmas, cfg=1.0))


def test_input_model_is_not_mutated(host, setup):
    model = setup["models"]["v_prediction"]
    before = dict(model.model_options)
    post_before = list(model.model_options.get("sampler_post_cfg_function", []))
    patched = ours(host, model)
    assert patched is not model
    assert model.model_options.keys() == before.keys()
    assert model.model_options.get("sampler_post_cfg_function", []) == post_before
    assert len(patched.model_options["sampler_post_cfg_function"]) == len(post_before) + 1


@pytest.mark.parametrize(("name", "value"), [
    ("multiplier", 1.5), ("multiplier", -0.1), ("multiplier", math.nan),
    ("space", "noise"), ("terminal_step", "skip"), ("sigma_end", -1.0),
])
def test_bad_input_names_node_and_input(host, setup, name, value):
    with pytest.raises(ValueError, match=rf"ZSNRRescaleCFG: input '{name}'"):
        ours(host, setup["models"]["v_prediction"], **{name: value})


def test_inverted_sigma_window_is_refused(host, setup):
    with pytest.raises(ValueError, match=r"ZSNRRescaleCFG: input 'sigma_start'"):
        ours(host, setup["models"]["v_prediction"], sigma_start=1.0, sigma_end=2.0)


def test_sigma_window(host, setup):
    model = setup["models"]["v_prediction"]
    table = model.get_model_object("model_sampling").sigmas
    inside, outside = table_sigmas(model, [500]), table_sigmas(model, [900])
    windowed = ours(host, model, sigma_start=float(table[600]), sigma_end=float(table[400]))
    torch.testing.assert_close(run(setup, windowed, inside), run(setup, ours(host, model), inside), rtol=0, atol=0)
    assert torch.equal(run(setup, windowed, outside), run(setup, model, outside))


# --- chaining ------------------------------------------------------------------------------------

def test_chains_with_another_post_cfg_function_in_graph_order(host, setup):
    model = setup["models"]["v_prediction"]
    sigmas = table_sigmas(model, [500])
    plain, rescaled = run(setup, model, sigmas), run(setup, ours(host, model), sigmas)
    ours_then_other = run(setup, with_post_cfg(ours(host, model), shift_and_squash), sigmas)
    other_then_ours = run(setup, ours(host, with_post_cfg(model, shift_and_squash)), sigmas)
    # graph order: the other node sees our result; or we add our change to the other's result
    torch.testing.assert_close(ours_then_other, 0.9 * rescaled + SHIFT, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(other_then_ours, (0.9 * plain + SHIFT) + (rescaled - plain), rtol=1e-5, atol=1e-5)


def test_two_rescale_nodes_both_apply(host, setup):
    model = setup["models"]["v_prediction"]
    sigmas = table_sigmas(model, [500])
    plain = run(setup, model, sigmas)
    in_v, in_x0 = run(setup, ours(host, model), sigmas), run(setup, ours(host, model, space="x0"), sigmas)
    both = run(setup, ours(host, ours(host, model), space="x0"), sigmas)
    torch.testing.assert_close(both, plain + (in_v - plain) + (in_x0 - plain), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("host_first", [True, False])
def test_keeps_the_host_cfg_function_slot(host, setup, host_first):
    model = setup["models"]["epsilon"]
    sigmas = table_sigmas(model, [500])
    plain = run(setup, model, sigmas)
    host_only = run(setup, host_rescale(host, model, 0.5), sigmas)
    ours_only = run(setup, ours(host, model, space="x0"), sigmas)
    if host_first:
        combined = ours(host, host_rescale(host, model, 0.5), space="x0")
    else:
        combined = host_rescale(host, ours(host, model, space="x0"), 0.5)
    both = run(setup, combined, sigmas)
    torch.testing.assert_close(both, host_only + (ours_only - plain), rtol=1e-5, atol=1e-5)
    # both effects are far above the tolerance, so the sum above cannot hold by accident
    assert (host_only - plain).abs().max() > 1e-3 and (ours_only - plain).abs().max() > 1e-3


# --- SNR 0 ----------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def exact_zsnr_model(host, setup):
    """A v model trained with zero terminal SNR, its sampling patched to the exact SNR-0 sentinel."""
    return host.node["ZeroTerminalSNR"].execute(model=setup["reference"]("v_prediction", "scaled_linear_zsnr"),
                                                terminal="exact").result[0]


def terminal_sigmas(model):
    return [float(model.get_model_object("model_sampling").sigmas[-1]), 0.0]


def test_snr_zero_step_is_finite_and_v_equals_x0_there(host, setup, exact_zsnr_model):
    assert getattr(exact_zsnr_model.get_model_object("model_sampling"), "zsnr_terminal_sigma", None) is not None
    sigmas = terminal_sigmas(exact_zsnr_model)
    plain = run(setup, exact_zsnr_model, sigmas)
    in_v = run(setup, ours(host, exact_zsnr_model, space="v"), sigmas)
    in_x0 = run(setup, ours(host, exact_zsnr_model, space="x0"), sigmas)
    in_eps = run(setup, ours(host, exact_zsnr_model, space="eps"), sigmas)
    assert torch.isfinite(in_v).all() and torch.isfinite(in_eps).all()
    # alphā = 0: v = -x0 exactly (paper §6), so both spaces rescale the same tensor
    torch.testing.assert_close(in_v, in_x0, rtol=1e-6, atol=1e-6)
    assert (in_v - plain).abs().max() > 1e-3
    # eps = x_t at SNR 0 whatever the model predicts: there is nothing to rescale
    torch.testing.assert_close(in_eps, plain, rtol=0, atol=1e-6)


@pytest.mark.parametrize("terminal", ["exact", "host_zsnr_clamp"])
def test_unguided_terminal_step_uses_the_conditional_prediction(host, setup, exact_zsnr_model, terminal):
    if terminal == "exact":
        model = exact_zsnr_model
    else:  # the host's own zsnr option ends at alphā = 4.9e-8 (sigma ≈ 4518.76), not exactly 0
        model = host.node["ModelSamplingDiscrete"]().patch(
            setup["reference"]("v_prediction", "scaled_linear_zsnr"), "v_prediction", True)[0]
    sigmas = terminal_sigmas(model)
    conditional = run(setup, model, sigmas, cfg=1.0)  # cfg 1: the host evaluates the positive alone
    unguided = run(setup, ours(host, model, terminal_step="unguided"), sigmas)
    guided = run(setup, ours(host, model), sigmas)
    torch.testing.assert_close(unguided, conditional, rtol=1e-5, atol=1e-5)
    assert (guided - conditional).abs().max() > 1e-3
    interior = table_sigmas(model, [500])  # elsewhere unguided is the ordinary rescale
    torch.testing.assert_close(run(setup, ours(host, model, terminal_step="unguided"), interior),
                               run(setup, ours(host, model), interior), rtol=0, atol=0)


# --- other families, video latents, dtypes ---------------------------------------------------------

def test_flow_model_rescales_the_velocity_and_x0_space_matches_upstream(host, setup):
    model = base_model(host, "FLOW")
    record = recorded_predictions(setup, model, [0.6, 0.0])
    x0_cond, x0_uncond = record["cond_denoised"].double(), record["uncond_denoised"].double()
    x, sigma = record["input"].double(), float(record["sigma"][0])
    auto = host_cfg_function(ours(host, model, space="auto"), record)
    # flow velocity u = eps - x0 = (x - x0)/sigma, rescaled, then x0 = x - sigma·u
    dims = (1, 2, 3)
    velocity = written_out_rescale((x - x0_cond) / sigma, (x - x0_uncond) / sigma, 7.5, 0.7, dims)
    torch.testing.assert_close(auto, x - sigma * velocity, rtol=1e-9, atol=1e-9)
    # upstream ComfyUI's later flow branch (Comfy-Org/ComfyUI@387f98aa): Algorithm 2 on x0 itself
    in_x0 = host_cfg_function(ours(host, model, space="x0"), record)
    torch.testing.assert_close(in_x0, written_out_rescale(x0_cond, x0_uncond, 7.5, 0.7, dims), rtol=1e-9, atol=1e-9)
    assert (auto - in_x0).abs().max() > 1e-3


def test_edm_model_auto_is_x0(host, setup):
    model = base_model(host, "EDM", sigma_data=0.5)
    cond, uncond, x = (t.double() for t in synthetic((2, 3, 16, 16), 30))
    auto = direct(setup, ours(host, model, space="auto"), cond, uncond, x, 3.0)
    torch.testing.assert_close(auto, written_out_rescale(cond, uncond, 7.5, 0.7, (1, 2, 3)), rtol=1e-9, atol=1e-9)


def test_v_space_is_the_models_own_v_output_with_sigma_data(host, setup):
    # V_PREDICTION with sigma_data 0.5: the network's own v is the inverse of the host's
    # calculate_denoised, x0 = x·sd²/(s²+sd²) - v·s·sd/sqrt(s²+sd²); rescaling that v is the paper's recipe.
    model = base_model(host, "V_PREDICTION_CONTINUOUS", sigma_data=0.5)
    cond, uncond, x = (t.double() for t in synthetic((2, 3, 16, 16), 31))
    s, sd = 1.7, 0.5
    norm = math.sqrt(s * s + sd * sd)

    def v_of(x0):
        return (x * sd * sd / norm**2 - x0) * norm / (s * sd)

    v_final = written_out_rescale(v_of(cond), v_of(uncond), 7.5, 0.7, (1, 2, 3))
    expected = x * sd * sd / norm**2 - v_final * s * sd / norm
    torch.testing.assert_close(direct(setup, ours(host, model), cond, uncond, x, s), expected, rtol=1e-9, atol=1e-9)


def test_video_latents_use_std_over_all_non_batch_dims(host, setup):
    model = setup["models"]["v_prediction"]
    cond, uncond, x = synthetic((2, 4, 3, 8, 8), 32)
    contrast = torch.tensor([0.2, 1.0, 3.0]).view(1, 1, 3, 1, 1)  # frames of very different contrast
    cond, uncond, x = (t.double() * contrast for t in (cond, uncond, x))
    sigma = 1.6
    mine = direct(setup, ours(host, model), cond, uncond, x, sigma)
    # the host's v conversion, Algorithm 2 with std over (C, T, H, W), and back
    scaled = x / (sigma**2 + 1)
    v_of = lambda x0: (scaled - x0) * math.sqrt(sigma**2 + 1) / sigma  # noqa: E731
    v_final = written_out_rescale(v_of(cond), v_of(uncond), 7.5, 0.7, (1, 2, 3, 4))
    torch.testing.assert_close(mine, scaled - v_final * sigma / math.sqrt(sigma**2 + 1), rtol=1e-9, atol=1e-9)
    theirs = direct(setup, host_rescale(host, model), cond, uncond, x, sigma)  # std over dims (1, 2, 3)
    assert (mine - theirs).abs().max() > 1e-3


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_latents(host, setup, dtype):
    model = setup["models"]["v_prediction"]
    cond, uncond, x = synthetic((2, 3, 16, 16), 33)
    full = direct(setup, ours(host, model), cond, uncond, x, 1.6)
    half = direct(setup, ours(host, model), cond.to(dtype), uncond.to(dtype), x.to(dtype), 1.6)
    assert half.dtype == dtype and torch.isfinite(half).all()
    torch.testing.assert_close(half.float(), full, rtol=0.05, atol=0.1)
