"""The reference model (exact posterior-mean denoiser) as a real model inside the real host."""
from __future__ import annotations

import math

import pytest
import torch
from zsnr_core.reference import datasets, denoiser
from zsnr_core.schedules import betas

pytestmark = pytest.mark.host

SIZE, BATCH = 64, 8


def build(host, **kwargs):
    args = {"dataset": "brightness_ramp", "trained_schedule": "scaled_linear_zsnr", "prediction": "v_prediction",
            **kwargs}
    return host.node["ZSNRReferenceModel"].execute(**args).result[0]


def condition(host, subset):
    return host.node["ZSNRReferenceCondition"].execute(subset=subset).result[0]


def context_of(host, subsets):
    return torch.cat([condition(host, subset)[0][0] for subset in subsets])


@pytest.fixture(scope="module")
def ramp():
    return datasets.render_dataset("brightness_ramp", SIZE, SIZE).double()


def noisy_batch(data, sigma, seed=0):
    """x = x0 + sigma·noise (the host's k-diffusion form) around a few dataset images."""
    generator = torch.Generator().manual_seed(seed)
    picks = torch.randint(0, data.shape[0], (BATCH,), generator=generator)
    noise = torch.randn((BATCH,) + data.shape[1:], generator=generator, dtype=torch.float64)
    return (data[picks] + sigma * noise).float()


def test_is_a_host_model_with_pixel_latents(host):
    import comfy.latent_formats
    import comfy.model_base
    import comfy.model_patcher

    for prediction, model_type in (("v_prediction", "V_PREDICTION"), ("epsilon", "EPS")):
        patcher = build(host, prediction=prediction)
        assert isinstance(patcher, comfy.model_patcher.ModelPatcher)
        assert isinstance(patcher.model, comfy.model_base.BaseModel)
        assert patcher.model.model_type == comfy.model_base.ModelType[model_type]
        assert isinstance(patcher.model.latent_format, comfy.latent_formats.ChromaRadiance)
        assert isinstance(patcher.model.diffusion_model, torch.nn.Module)
        assert patcher.model_size() > 0


@pytest.mark.parametrize("trained", denoiser.TRAINED_SCHEDULES)
def test_host_samples_with_the_plain_schedule_of_the_family(host, trained):
    family = trained.removesuffix("_zsnr")
    # Independent float64 table: paper Table 1 betas, DDPM eq. 4, sigma = sqrt((1-ā)/ā).
    alphas = betas.alphas_cumprod_from_betas(betas.make_betas(family))
    expected = ((1 - alphas) / alphas).sqrt()
    host_sigmas = build(host, trained_schedule=trained).get_model_object("model_sampling").sigmas
    torch.testing.assert_close(host_sigmas.double(), expected, rtol=1e-6, atol=0)


@pytest.mark.parametrize("prediction", ["v_prediction", "epsilon"])
@pytest.mark.parametrize("trained", ["scaled_linear", "scaled_linear_zsnr"])
def test_denoised_matches_the_float64_posterior_mean(host, ramp, prediction, trained):
    patcher = build(host, trained_schedule=trained, prediction=prediction)
    host_sigmas = patcher.get_model_object("model_sampling").sigmas
    table = denoiser.trained_alphas_cumprod(trained)
    subsets = ["all", "dark", "bright", "all", "dark", "bright", "all", "all"]
    masks = datasets.subset_masks(datasets.render_dataset("brightness_ramp", SIZE, SIZE))
    allowed = torch.stack([masks[name] for name in subsets])
    for step in (0, 120, 500, 880, 999):
        sigma = host_sigmas[step].double()
        x = noisy_batch(ramp, sigma.item(), seed=step)
        denoised = patcher.model.apply_model(x, host_sigmas[[step]].expand(BATCH),
                                             c_crossattn=context_of(host, subsets))
        # The network sees t = step and uses its own ā; the host converts with its own sigma:
        # VP input x_t = x / sqrt(1+σ²), then x0 = sqrt(ā_h) x_t - sqrt(1-ā_h) v or x0 = x - σ eps.
        noisy_vp = x.double() / (1 + sigma**2).sqrt()
        alpha_net, alpha_host = table[step], 1 / (1 + sigma**2)
        x0 = denoiser.posterior_mean_x0(noisy_vp, alpha_net, ramp, allowed)
        if prediction == "v_prediction":
            v = denoiser.v_from_x0(noisy_vp, alpha_net, x0)
            expected = alpha_host.sqrt() * noisy_vp - (1 - alpha_host).sqrt() * v
        else:
            expected = x.double() - sigma * denoiser.eps_from_x0(noisy_vp, alpha_net, x0)
        assert denoised.dtype == torch.float32
        torch.testing.assert_close(denoised.double(), expected, rtol=0, atol=2e-4 * (1 + sigma.item()))
        if trained == "scaled_linear":  # matched schedules: the host's x0 is the posterior mean itself
            torch.testing.assert_close(denoised.double(), x0, rtol=0, atol=2e-4 * (1 + sigma.item()))


def test_top_timestep_of_zsnr_predicts_the_data_and_subset_means(host, ramp):
    net = build(host).model.diffusion_model
    masks = datasets.subset_masks(ramp)
    noisy = torch.randn((3, 3, SIZE, SIZE))
    for t in (999.0, 998.5):  # fractional t inside the last interval has log-SNR -inf as well
        v = net(noisy, torch.full((3,), t), context=context_of(host, ["all", "dark", "bright"]))
        # Paper §6: at ā_T = 0, x0 = -v exactly, and the posterior mean is the (subset) mean (§5.2).
        for row, subset in enumerate(("all", "dark", "bright")):
            torch.testing.assert_close(-v[row].double(), ramp[masks[subset]].mean(dim=0), rtol=0, atol=1e-6)
    zeroed = torch.zeros((1, 1, len(datasets.SUBSETS)))  # ConditioningZeroOut of any subset = "all"
    v = net(noisy[:1], torch.tensor([999.0]), context=zeroed)
    torch.testing.assert_close(-v[0].double(), ramp.mean(dim=0), rtol=0, atol=1e-6)


def run_sampler(host, patcher, positive, negative, cfg=1.0, steps=10, seed=0):
    """The stock KSampler path (nodes.common_ksampler) on an EmptyChromaRadianceLatentImage."""
    latent = host.node["EmptyChromaRadianceLatentImage"].execute(width=SIZE, height=SIZE, batch_size=BATCH)
    (out,) = host.nodes.common_ksampler(patcher, seed, steps, cfg, "euler", "simple", positive, negative,
                                        latent.result[0])
    return out["samples"]


def test_stock_ksampler_run_and_wrappers_reach_the_network(host, ramp):
    import comfy.patcher_extension

    patcher = build(host).clone()
    calls = []

    def record(executor, *args, **kwargs):
        output = executor(*args, **kwargs)
        calls.append((args[1].clone(), output.clone()))
        return output

    patcher.add_wrapper_with_key(comfy.patcher_extension.WrappersMP.DIFFUSION_MODEL, "test", record)
    everything = condition(host, "all")
    out = run_sampler(host, patcher, everything, everything)
    assert out.shape == (BATCH, 3, SIZE, SIZE)
    assert torch.isfinite(out).all() and out.abs().max() < 1.5
    assert len(calls) == 10
    # The host's top sigma maps to t = 999, where the zsnr-trained network's ā is 0: v = -mean.
    first_t, first_v = calls[0]
    assert torch.equal(first_t, torch.full((BATCH,), 999.0))
    torch.testing.assert_close(-first_v.double(), ramp.mean(dim=0).expand(BATCH, -1, -1, -1), rtol=0, atol=1e-6)


@pytest.mark.parametrize("subset", ["dark", "bright"])
def test_conditioning_selects_the_subset(host, subset):
    # Matched schedules and cfg 1: Euler's last step returns the last x0 prediction, a convex
    # combination of the subset's images, so every sample's brightness lies on that side of 0.
    patcher = build(host, trained_schedule="scaled_linear")
    out = run_sampler(host, patcher, condition(host, subset), condition(host, "all"))
    brightness = datasets.mean_brightness(out)
    assert ((brightness < 0) if subset == "dark" else (brightness > 0)).all(), brightness


def test_cfg_batches_cond_and_uncond_and_pushes_away_from_uncond(host):
    patcher = build(host, trained_schedule="scaled_linear")
    guided = run_sampler(host, patcher, condition(host, "dark"), condition(host, "all"), cfg=3.0)
    unguided = run_sampler(host, patcher, condition(host, "dark"), condition(host, "all"), cfg=1.0)
    assert torch.isfinite(guided).all()
    assert datasets.mean_brightness(guided).mean() < datasets.mean_brightness(unguided).mean()


def test_clone_shares_the_network_and_leaves_the_original_alone(host):
    import comfy.model_management

    original = build(host)
    options_before = repr(original.model_options)
    clone = original.clone()
    clone.set_model_sampler_cfg_function(lambda args: args["cond"])
    clone.add_object_patch("model_sampling", clone.get_model_object("model_sampling"))
    assert clone.model is original.model
    assert repr(original.model_options) == options_before and not original.object_patches
    comfy.model_management.load_models_gpu([clone])
    assert clone.current_loaded_device() == comfy.model_management.get_torch_device()
    sigma = original.get_model_object("model_sampling").sigmas[[400]].expand(2)
    x, context = torch.randn((2, 3, 24, 40)), context_of(host, ["all", "dark"])
    via_clone = clone.model.apply_model(x, sigma, c_crossattn=context)
    comfy.model_management.unload_all_models()
    via_original = original.model.apply_model(x, sigma, c_crossattn=context)
    assert torch.equal(via_clone, via_original)


def test_bad_context_names_the_model_and_the_condition_node(host):
    patcher = build(host)
    sigma = patcher.get_model_object("model_sampling").sigmas[[10]].expand(2)
    x = torch.randn((2, 3, 16, 16))
    text_like = torch.randn((2, 77, 768))  # what CLIPTextEncode would plug in
    averaged = torch.tensor([[[0.0, 0.5, 0.5]]]).expand(2, 1, 3)  # ConditioningAverage of dark/bright
    for context in (None, text_like, averaged):
        with pytest.raises(ValueError, match="ZSNRReferenceModel.*ZSNRReferenceCondition"):
            patcher.model.apply_model(x, sigma, c_crossattn=context)
    with pytest.raises(ValueError, match="ZSNRReferenceModel.*3, height, width"):
        patcher.model.apply_model(torch.randn((2, 4, 16, 16)), sigma, c_crossattn=context_of(host, ["all"] * 2))


def test_user_images_are_memorised_at_any_latent_size(host):
    # Constant-colour images are unchanged by any resize, so the expected values are exact.
    colours = torch.tensor([[0.1, 0.2, 0.3], [0.9, 0.5, 0.0], [0.4, 0.4, 0.8], [1.0, 1.0, 1.0]])
    images = colours.view(4, 1, 1, 3).expand(4, 32, 24, 3).clone()
    patcher = build(host, images=images)
    net = patcher.model.diffusion_model
    latents = (2 * colours - 1).view(4, 3, 1, 1).expand(4, 3, 40, 56).double()
    v = net(torch.randn((1, 3, 40, 56)), torch.tensor([999.0]), context=context_of(host, ["all"]))
    torch.testing.assert_close(-v[0].double(), latents.mean(dim=0), rtol=0, atol=1e-6)
    # At t = 0 (1-ā = 8.5e-4) a noise-free input is recognised as its image.
    alpha = denoiser.trained_alphas_cumprod("scaled_linear_zsnr")[0].item()
    noisy = (math.sqrt(alpha) * latents[1:2]).float()
    v = net(noisy, torch.tensor([0.0]), context=context_of(host, ["all"]))
    x0 = math.sqrt(alpha) * noisy.double() - math.sqrt(1 - alpha) * v.double()  # x0 = sqrt(ā)x_t - sqrt(1-ā)v
    torch.testing.assert_close(x0, latents[1:2], rtol=0, atol=1e-4)


@pytest.mark.parametrize("bad, why", [
    (torch.rand((1, 16, 16, 3)), "at least 2"),
    (torch.rand((3, 16, 16, 4)), r"\[count, height, width, 3\]"),
    (torch.rand((16, 16, 3)), r"\[count, height, width, 3\]"),
])
def test_bad_images_are_rejected(host, bad, why):
    with pytest.raises(ValueError, match=rf"ZSNRReferenceModel: input 'images' .*{why}"):
        build(host, images=bad)


def test_schemas_have_tooltips_and_categories(host):
    for node_id in ("ZSNRReferenceModel", "ZSNRReferenceCondition"):
        schema = host.node[node_id].define_schema()
        assert schema.category == "zsnr/reference" and schema.display_name
        assert all(item.tooltip for item in schema.inputs)
    context = condition(host, "bright")[0][0]
    assert context.shape == (1, 1, len(datasets.SUBSETS))
    assert context[0, 0].tolist() == [float(name == "bright") for name in datasets.SUBSETS]
