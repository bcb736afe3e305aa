"""CFG and Algorithm 2 (paper §3.4) in samplers/guidance.py, checked against the paper's formulas,
diffusers' rescale_noise_cfg and first principles; conversions checked against paper eq. 1 / §6."""
from __future__ import annotations

import math

import pytest
import torch
from diffusers.pipelines.stable_diffusion.pipeline_stable_diffusion import rescale_noise_cfg
from zsnr_core.samplers import guidance, prediction
from zsnr_core.schedules import conversions

SHAPE = (2, 4, 8, 8)


def gaussian(seed: int, shape=SHAPE, dtype=torch.float32) -> torch.Tensor:
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed), dtype=dtype)


def related_pair(seed: int, shape=SHAPE, dtype=torch.float32):
    """cond and uncond that differ by a guidance direction, as real predictions do."""
    uncond = gaussian(seed, shape, dtype)
    return uncond + 0.3 * gaussian(seed + 100, shape, dtype), uncond


def algorithm_2(cond, uncond, scale, multiplier, dims):
    """Paper Algorithm 2 written out, std over `dims` (torch.std default, unbiased)."""
    x_cfg = uncond + scale * (cond - uncond)
    x_rescaled = x_cfg * cond.std(dim=dims, keepdim=True) / x_cfg.std(dim=dims, keepdim=True)
    return multiplier * x_rescaled + (1 - multiplier) * x_cfg


# --- Algorithm 2 -------------------------------------------------------------------------------

@pytest.mark.parametrize("scale", [1.5, 7.5, 12.0])
def test_multiplier_zero_is_plain_cfg_exactly(scale):
    cond, uncond = related_pair(1)
    assert torch.equal(guidance.rescale_cfg(cond, uncond, scale, 0.0), guidance.cfg(cond, uncond, scale))


@pytest.mark.parametrize("multiplier", [0.0, 0.7, 1.0])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.float64])
def test_cfg_scale_one_is_the_conditional_prediction_exactly(multiplier, dtype):
    cond, uncond = related_pair(2, dtype=dtype)
    assert torch.equal(guidance.cfg(cond, uncond, 1.0), cond)
    assert torch.equal(guidance.rescale_cfg(cond, uncond, 1.0, multiplier), cond)


def test_cfg_is_the_paper_formula():
    cond, uncond = related_pair(3, dtype=torch.float64)
    torch.testing.assert_close(guidance.cfg(cond, uncond, 7.5), uncond + 7.5 * (cond - uncond))


@pytest.mark.parametrize("multiplier", [0.0, 0.7, 1.0])
@pytest.mark.parametrize("shape", [SHAPE, (2, 4, 3, 8, 8)])
def test_equals_diffusers_rescale_noise_cfg(multiplier, shape):
    # diffusers takes the guided prediction and the text (positive) prediction; both use torch.std
    # over every non-batch dim, so the definitions coincide on any tensors.
    cond, uncond = related_pair(4, shape, torch.float64)
    noise_cfg = uncond + 7.5 * (cond - uncond)
    theirs = rescale_noise_cfg(noise_cfg, cond, guidance_rescale=multiplier)
    torch.testing.assert_close(guidance.rescale_cfg(cond, uncond, 7.5, multiplier), theirs, rtol=1e-12, atol=1e-12)


def test_equals_the_written_out_algorithm_in_float32():
    cond, uncond = related_pair(5)
    expected = algorithm_2(cond, uncond, 7.5, 0.7, dims=(1, 2, 3))
    torch.testing.assert_close(guidance.rescale_cfg(cond, uncond, 7.5, 0.7), expected, rtol=1e-6, atol=1e-6)


def test_fully_rescaled_output_has_the_conditional_std():
    # φ = 1: x_final = x_cfg·std(x_pos)/std(x_cfg), whose std is std(x_pos) by construction.
    cond, uncond = related_pair(6, dtype=torch.float64)
    out = guidance.rescale_cfg(cond, uncond, 9.0, 1.0)
    torch.testing.assert_close(guidance.per_sample_std(out), guidance.per_sample_std(cond))


def test_video_std_is_over_all_non_batch_dims():
    # Frames with very different contrast: the std over (C, T, H) for each W column differs from
    # the std over the whole sample, which is what Algorithm 2 means by std(x).
    frame_contrast = torch.tensor([0.2, 1.0, 3.0]).view(1, 1, 3, 1, 1)
    cond = gaussian(7, (2, 4, 3, 8, 8)) * frame_contrast
    uncond = cond + 0.5 * gaussian(8, (2, 4, 3, 8, 8)) * frame_contrast.flip(2)
    std = guidance.per_sample_std(cond)
    assert std.shape == (2, 1, 1, 1, 1)
    torch.testing.assert_close(std, cond.reshape(2, -1).std(dim=1).view(2, 1, 1, 1, 1))

    ours = guidance.rescale_cfg(cond, uncond, 7.5, 0.7)
    flat = guidance.rescale_cfg(cond.reshape(2, -1), uncond.reshape(2, -1), 7.5, 0.7).view_as(cond)
    torch.testing.assert_close(ours, flat)
    torch.testing.assert_close(ours, algorithm_2(cond, uncond, 7.5, 0.7, dims=(1, 2, 3, 4)))
    # ComfyUI 0.3.75's RescaleCFG uses dims (1, 2, 3): on video that is a different (wrong) result
    host_like = algorithm_2(cond, uncond, 7.5, 0.7, dims=(1, 2, 3))
    assert not torch.allclose(ours, host_like, rtol=1e-3, atol=1e-3)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16, torch.float64])
@pytest.mark.parametrize("value", [0.0, 0.1, -3.7, 1e4])
def test_zero_std_of_the_guided_prediction_gives_finite_output(dtype, value):
    cond = torch.full(SHAPE, value, dtype=dtype)
    uncond = cond.clone()
    for multiplier in (0.0, 0.7, 1.0):
        out = guidance.rescale_cfg(cond, uncond, 7.5, multiplier)
        assert torch.isfinite(out).all()
        # nothing to rescale: the factor is 1 and the result is plain CFG (= cond here)
        assert torch.equal(out, guidance.cfg(cond, uncond, 7.5))
    assert torch.equal(guidance.rescale_factor(cond, cond), torch.ones(2, 1, 1, 1, dtype=guidance.work_dtype(dtype)))


@pytest.mark.parametrize("scale", [2.0, 7.5, 12.0])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.float64])
def test_guided_prediction_constant_but_conditional_not_stays_finite(scale, dtype):
    # uncond = (w·cond - c)/(w-1) makes x_cfg = w·cond - (w-1)·uncond = c up to rounding, while
    # cond has spread: the unguarded ratio std(x_pos)/std(x_cfg) would be ~1/eps or inf.
    for seed in range(20):
        cond = 3 * gaussian(seed, dtype=torch.float64)
        uncond = ((scale * cond - 0.25) / (scale - 1)).to(dtype)
        cond = cond.to(dtype)
        out = guidance.rescale_cfg(cond, uncond, scale, 0.7)
        assert torch.isfinite(out).all()
        # factor 1: plain CFG as computed in the working precision (float32 for half inputs)
        work = guidance.work_dtype(dtype)
        torch.testing.assert_close(out, guidance.cfg(cond.to(work), uncond.to(work), scale).to(dtype), rtol=0, atol=0)


def test_one_element_samples_do_not_produce_nan():
    cond, uncond = torch.tensor([[1.0], [2.0]]), torch.tensor([[0.5], [3.0]])
    assert torch.isfinite(guidance.rescale_cfg(cond, uncond, 7.5, 0.7)).all()


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_keeps_its_dtype_and_agrees_with_float32(dtype):
    cond, uncond = related_pair(10, dtype=dtype)
    out = guidance.rescale_cfg(cond, uncond, 7.5, 0.7)
    assert out.dtype == dtype
    reference = guidance.rescale_cfg(cond.float(), uncond.float(), 7.5, 0.7)
    torch.testing.assert_close(out.float(), reference, rtol=2e-2, atol=2e-2)


# --- pairs and conversions ---------------------------------------------------------------------

SIGMAS = [0.03, 0.5, 1.0, 14.6, 4518.76]


def test_vp_pair_is_sqrt_alphas_cumprod():
    sigma = torch.tensor(SIGMAS, dtype=torch.float64)
    signal, noise = conversions.vp_pair(sigma)
    alphas_cumprod = 1 / (1 + sigma**2)  # ComfyUI's VE sigma ↔ VP alphā
    torch.testing.assert_close(signal, alphas_cumprod.sqrt(), rtol=1e-14, atol=0)
    torch.testing.assert_close(noise, (1 - alphas_cumprod).sqrt(), rtol=1e-12, atol=0)


def test_snr_zero_pair_is_exact():
    signal, noise = conversions.vp_pair(torch.tensor([math.inf, 2.0, 4518.7598]), terminal_sigma=4518.76)
    assert signal.tolist()[0] == 0.0 and noise.tolist()[0] == 1.0  # sigma = inf
    assert signal.tolist()[2] == 0.0 and noise.tolist()[2] == 1.0  # the declared sentinel (float32-rounded)
    assert signal.tolist()[1] > 0
    assert conversions.flow_pair(torch.tensor(1.0)) == (0.0, 1.0)


@pytest.mark.parametrize("sigma", SIGMAS)
def test_vp_conversions_agree_with_paper_eq1_and_section_6(sigma):
    x0, eps = gaussian(11, dtype=torch.float64), gaussian(12, dtype=torch.float64)
    signal, noise = conversions.vp_pair(torch.tensor(sigma))
    x_t = signal * x0 + noise * eps  # paper eq. 1
    v = prediction.prediction_from_x0("v", "vp", x_t, x0, signal, noise)
    torch.testing.assert_close(v, signal * eps - noise * x0)  # v definition (paper §6)
    torch.testing.assert_close(v, signal * eps - noise * x0)  # v = sqrt(ā)·eps - sqrt(1-ā)·x0, paper §6
    torch.testing.assert_close(prediction.prediction_from_x0("eps", "vp", x_t, x0, signal, noise), eps)
    for space, value in (("v", v), ("eps", eps), ("x0", x0)):
        torch.testing.assert_close(prediction.x0_from_prediction(space, "vp", x_t, value, signal, noise), x0)


@pytest.mark.parametrize("sigma", [0.02, 0.3, 0.9, 1.0])
def test_flow_conversions(sigma):
    x0, eps = gaussian(13, dtype=torch.float64), gaussian(14, dtype=torch.float64)
    signal, noise = conversions.flow_pair(torch.tensor(sigma))
    x_t = (1 - sigma) * x0 + sigma * eps  # rectified flow path
    velocity = prediction.prediction_from_x0("v", "flow", x_t, x0, signal, noise)
    torch.testing.assert_close(velocity, eps - x0)
    torch.testing.assert_close(prediction.prediction_from_x0("eps", "flow", x_t, x0, signal, noise), eps)
    torch.testing.assert_close(prediction.x0_from_prediction("v", "flow", x_t, velocity, signal, noise), x0)


def test_snr_zero_v_is_exactly_minus_x0_and_eps_is_refused():
    x0, x_t = gaussian(15), gaussian(16)
    v = prediction.prediction_from_x0("v", "vp", x_t, x0, 0.0, 1.0)
    assert torch.equal(v, -x0)
    assert torch.equal(prediction.x0_from_prediction("v", "vp", x_t, v, 0.0, 1.0), x0)
    with pytest.raises(ValueError, match="SNR 0"):
        prediction.x0_from_prediction("eps", "vp", x_t, x_t, 0.0, 1.0)


def rescaled_x0_by_round_trip(space, path, x0_cond, x0_uncond, scale, multiplier, x_t, signal, noise):
    """Independent route: convert both predictions, run Algorithm 2, convert the result back."""
    to = prediction.prediction_from_x0
    cond, uncond = (to(space, path, x_t, x0, signal, noise) for x0 in (x0_cond, x0_uncond))
    return prediction.x0_from_prediction(space, path, x_t, algorithm_2(cond, uncond, scale, multiplier, (1, 2, 3)),
                                       signal, noise)


@pytest.mark.parametrize("space", prediction.SPACES)
@pytest.mark.parametrize(("path", "sigma"), [("vp", 0.4), ("vp", 3.0), ("flow", 0.25), ("flow", 0.8)])
def test_x0_change_equals_the_round_trip_through_the_space(space, path, sigma):
    x0_cond, x0_uncond = related_pair(17, dtype=torch.float64)
    eps = gaussian(18, dtype=torch.float64)
    signal, noise = (conversions.vp_pair if path == "vp" else conversions.flow_pair)(torch.tensor([sigma, sigma]))
    x_t = prediction.per_sample(signal, x0_cond) * x0_cond + prediction.per_sample(noise, x0_cond) * eps
    change = guidance.rescaled_cfg_x0_change(x0_cond, x0_uncond, 7.5, 0.7, space, path, x_t, signal, noise)
    expected = rescaled_x0_by_round_trip(space, path, x0_cond, x0_uncond, 7.5, 0.7, x_t, signal, noise)
    torch.testing.assert_close(guidance.cfg(x0_cond, x0_uncond, 7.5) + change, expected, rtol=1e-10, atol=1e-10)


def test_spaces_really_differ():
    # a test of the space plumbing that passes with every space mapped to x0 would be worthless
    x0_cond, x0_uncond = related_pair(19)
    x_t = gaussian(20)
    signal, noise = conversions.vp_pair(torch.tensor([1.0, 1.0]))
    changes = {space: guidance.rescaled_cfg_x0_change(x0_cond, x0_uncond, 7.5, 0.7, space, "vp", x_t, signal, noise)
               for space in prediction.SPACES}
    assert not torch.allclose(changes["v"], changes["x0"], atol=1e-3)
    assert not torch.allclose(changes["v"], changes["eps"], atol=1e-3)


def test_snr_zero_change_is_finite_and_v_equals_x0_space():
    x0_cond, x0_uncond = related_pair(21)
    x_t = gaussian(22)
    signal, noise = conversions.vp_pair(torch.tensor([math.inf, math.inf]))
    in_v = guidance.rescaled_cfg_x0_change(x0_cond, x0_uncond, 7.5, 0.7, "v", "vp", x_t, signal, noise)
    in_x0 = guidance.rescaled_cfg_x0_change(x0_cond, x0_uncond, 7.5, 0.7, "x0", "vp", x_t, signal, noise)
    in_eps = guidance.rescaled_cfg_x0_change(x0_cond, x0_uncond, 7.5, 0.7, "eps", "vp", x_t, signal, noise)
    assert torch.isfinite(in_v).all() and torch.isfinite(in_eps).all()
    assert torch.equal(in_v, in_x0)  # v = -x0 exactly at SNR 0 (paper §6), so the rescale is the same
    assert torch.equal(in_eps, torch.zeros_like(in_eps))  # eps = x_t at SNR 0: guidance cannot move it
    assert in_x0.abs().max() > 0.1


def test_no_noise_left_gives_no_change_in_v_and_eps():
    x0_cond, x0_uncond = related_pair(23)
    for space in ("v", "eps"):
        change = guidance.rescaled_cfg_x0_change(x0_cond, x0_uncond, 7.5, 0.7, space, "vp", x0_cond, 1.0, 0.0)
        assert torch.equal(change, torch.zeros_like(change))


def test_unguided_change_turns_cfg_into_the_conditional_prediction():
    x0_cond, x0_uncond = related_pair(24, dtype=torch.float64)
    result = guidance.cfg(x0_cond, x0_uncond, 7.5) + guidance.unguided_x0_change(x0_cond, x0_uncond, 7.5)
    torch.testing.assert_close(result, x0_cond, rtol=1e-12, atol=1e-12)


def test_unknown_space_is_refused():
    x = gaussian(25)
    with pytest.raises(ValueError, match="'space'"):
        prediction.prediction_from_x0("noise", "vp", x, x, 1.0, 0.0)
    with pytest.raises(ValueError, match="'path'"):
        prediction.prediction_from_x0("v", "edm", x, x, 1.0, 0.0)
