"""ZSNRSamplingResolution inside the real host: the KSampler-list logsnr_resolution spaces for the
recorded size, the given model is untouched, the size survives our re-patches and not the host's,
TimestepSpacingScheduler's latent input wins over it, and bad inputs name the node and the input."""
from __future__ import annotations

import pytest
import torch
from zsnr_host_helpers import condition, host_zsnr_clamp, ksample, reference, v_adapter, zero_snr

pytestmark = pytest.mark.host
NODE = "ZSNRSamplingResolution"


def resolution(host, model, width=1024, height=1024):
    return host.node[NODE].execute(model=model, width=width, height=height).result[0]


def sampling_of(model):
    return model.get_model_object("model_sampling")


def recorded(host, model):
    return host.pack.nodes.schedulers.recorded_latent_size(sampling_of(model))


def expected_sigmas(model, steps, latent_size):
    from zsnr_core.schedules import spacing

    return spacing.spacing_sigmas("logsnr_resolution", steps, sampling_of(model).sigmas, latent_size=latent_size)


def host_list(model, scheduler, steps):
    import comfy.samplers

    return comfy.samplers.calculate_sigmas(sampling_of(model), scheduler, steps)


def run_scheduler(host, model, **kwargs):
    args = {"spacing": "logsnr_resolution", "steps": 8, "denoise": 1.0, "steps_offset": 0, **kwargs}
    return host.node["TimestepSpacingScheduler"].execute(model=model, **args).result[0]


@pytest.fixture(scope="module")
def exact_model(host):
    return zero_snr(host, reference(host), "exact")


@pytest.mark.parametrize("width, height, latent", [(1024, 1024, (128, 128)), (768, 512, (64, 96)), (256, 256, (32, 32))])
def test_host_list_logsnr_resolution_spaces_for_the_recorded_size(host, exact_model, width, height, latent):
    patched = resolution(host, exact_model, width=width, height=height)
    assert recorded(host, patched) == latent  # (height, width) in latent positions: pixels // 8
    for steps in (1, 5, 12):
        via_host = host_list(patched, "logsnr_resolution", steps)
        assert torch.equal(via_host, expected_sigmas(exact_model, steps, latent))
        assert torch.equal(host_list(exact_model, "logsnr_resolution", steps), expected_sigmas(exact_model, steps, None))
        if steps > 2:
            assert not torch.equal(via_host, host_list(exact_model, "logsnr_resolution", steps)), "spaced for 64x64"
        # the other spacings ignore the size
        for spacing in ("trailing", "logsnr_uniform", "leading"):
            assert torch.equal(host_list(patched, spacing, steps), host_list(exact_model, spacing, steps)), spacing
    assert recorded(host, exact_model) is None


@pytest.mark.parametrize("kind", ["host", "zsnr"])
def test_given_model_untouched_and_the_copy_computes_the_same(host, kind):
    model = reference(host) if kind == "host" else zero_snr(host, reference(host), "exact")
    original = sampling_of(model)
    attributes = dict(vars(original))
    buffers = {name: tensor.clone() for name, tensor in original.named_buffers()}
    patches = dict(model.object_patches)
    patched = resolution(host, model)
    copy = sampling_of(patched)
    # the given patcher and its sampling object: the same object, the same attributes and tables
    assert sampling_of(model) is original and dict(model.object_patches) == patches
    assert vars(original).keys() == attributes.keys() and not hasattr(original, "zsnr_latent_size")
    for name, tensor in original.named_buffers():
        assert torch.equal(tensor, buffers[name]), name
    # the copy: the same class (the host's per-model one, or ours), no storage shared with the original
    assert copy is not original and type(copy) is type(original)
    originals = {id(v) for v in vars(original).values()} | {id(t) for t in original.buffers()}
    for name, value in list(vars(copy).items()) + list(copy.named_buffers()):
        if isinstance(value, (torch.Tensor, dict, list, set)):  # the mutable kinds a sampling object holds
            assert id(value) not in originals, name
    pointers = {t.untyped_storage().data_ptr() for t in original.buffers()}
    assert not pointers & {t.untyped_storage().data_ptr() for t in copy.buffers()}
    # …and it computes what the original computes
    sigmas = torch.cat([original.sigmas[[0, 10, 500, -2, -1]], torch.tensor([0.5, 3.0])]).float()
    torch.testing.assert_close(copy.timestep(sigmas), original.timestep(sigmas), rtol=0, atol=0)
    timesteps = torch.tensor([0.0, 10.5, 500.0, 998.0, 999.0])
    torch.testing.assert_close(copy.sigma(timesteps), original.sigma(timesteps), rtol=0, atol=0)
    output, sample = torch.randn(7, 3, 4, 4), torch.randn(7, 3, 4, 4)
    torch.testing.assert_close(copy.calculate_denoised(sigmas, output, sample),
                               original.calculate_denoised(sigmas, output, sample), rtol=0, atol=0)
    torch.testing.assert_close(copy.calculate_input(sigmas, sample), original.calculate_input(sigmas, sample),
                               rtol=0, atol=0)
    assert copy.sigma_max == original.sigma_max and copy.sigma_min == original.sigma_min
    if kind == "zsnr":
        assert copy.zsnr_terminal_sigma == original.zsnr_terminal_sigma
        at_zero = torch.full((7,), copy.zsnr_terminal_sigma)
        assert torch.equal(copy.calculate_denoised(at_zero, output, sample), -output)
    # writing into the copy's table leaves the original's alone
    copy.sigmas.mul_(2)
    assert torch.equal(original.sigmas, buffers["sigmas"])
    copy.sigmas.div_(2)


def test_sampling_is_unchanged_but_for_the_schedule(host, exact_model):
    patched = resolution(host, exact_model, width=256, height=256)
    same = ksample(host, patched, "euler", "trailing", steps=5, seeds=4)
    assert torch.equal(same, ksample(host, exact_model, "euler", "trailing", steps=5, seeds=4))


def test_size_survives_our_patches_after_it_and_not_the_hosts(host):
    base = resolution(host, reference(host), width=768, height=512)
    for name, model in {"ZeroTerminalSNR": zero_snr(host, base, "exact"),
                        "VPredictionAdapter": v_adapter(host, base),
                        "both": v_adapter(host, zero_snr(host, base, "clamp_comfy"), "epsilon")}.items():
        assert recorded(host, model) == (64, 96), name
        assert torch.equal(host_list(model, "logsnr_resolution", 6), expected_sigmas(model, 6, (64, 96))), name
    assert recorded(host, base) == (64, 96)
    # the host's ModelSamplingDiscrete builds its sampling from the checkpoint: the size is gone
    assert recorded(host, host_zsnr_clamp(base)) is None


def test_scheduler_node_latent_wins_over_the_recorded_size(host, exact_model):
    patched = resolution(host, exact_model, width=1024, height=1024)
    latent = {"samples": torch.zeros(1, 4, 32, 48)}
    assert torch.equal(run_scheduler(host, patched, latent=latent), expected_sigmas(exact_model, 8, (32, 48)))
    assert torch.equal(run_scheduler(host, patched), expected_sigmas(exact_model, 8, (128, 128)))
    assert torch.equal(run_scheduler(host, patched), host_list(patched, "logsnr_resolution", 8))
    assert torch.equal(run_scheduler(host, exact_model), expected_sigmas(exact_model, 8, None))
    assert torch.equal(run_scheduler(host, patched, spacing="trailing"), run_scheduler(host, exact_model, spacing="trailing"))


def test_flow_and_continuous_models_are_refused_naming_node_and_input(host):
    import comfy_extras.nodes_model_advanced as advanced

    flow = advanced.ModelSamplingSD3().patch(reference(host), 3.0)[0]
    edm = advanced.ModelSamplingContinuousEDM().patch(reference(host), "v_prediction", 120.0, 0.002)[0]
    for model, kind in ((flow, "ModelSamplingDiscreteFlow/CONST"), (edm, "ModelSamplingContinuousEDM")):
        for node in (NODE, "TimestepSpacingScheduler"):
            with pytest.raises(ValueError, match=rf"{node}: input 'model' = '.*{kind}.*discrete schedule"):
                resolution(host, model) if node == NODE else run_scheduler(host, model)
    with pytest.raises(ValueError, match=rf"{NODE}: input 'model' = None .*MODEL"):
        resolution(host, None)


@pytest.mark.parametrize("name, value", [("width", 63), ("width", 16392), ("height", 0), ("height", 512.5),
                                         ("width", True), ("height", float("nan"))])
def test_size_outside_the_schema_is_refused_naming_the_input(host, name, value):
    sizes = {"width": 1024, "height": 1024, name: value}
    node = host.node[NODE]
    with pytest.raises(ValueError, match=rf"{NODE}: input '{name}' = .* an integer in 64..16384"):
        node.execute(model=reference(host), **sizes)
    assert f"{NODE}: input '{name}'" in node.validate_inputs(model=None, **sizes)
    assert node.validate_inputs(model=None, width=64, height=16384) is True


def test_ksampler_samples_with_the_recorded_size(host, exact_model):
    """The host's KSampler with scheduler logsnr_resolution on the patched model: finite, and the
    same as SamplerCustom on the sigmas TimestepSpacingScheduler gives for that latent."""
    patched = resolution(host, exact_model, width=384, height=384)  # a 48x48 latent, sampled as 48x48
    positive = condition(host)
    latent = {"samples": torch.zeros(4, 3, 48, 48)}
    (out,) = host.nodes.common_ksampler(patched, 3, 5, 1.0, "euler", "logsnr_resolution", positive, positive, latent)
    assert out["samples"].shape == (4, 3, 48, 48) and torch.isfinite(out["samples"]).all()
    sampler = host.node["KSamplerSelect"].execute(sampler_name="euler").result[0]
    sigmas = run_scheduler(host, exact_model, steps=5, latent=latent)
    custom = host.node["SamplerCustom"].execute(model=exact_model, add_noise=True, noise_seed=3, cfg=1.0,
                                                positive=positive, negative=positive, sampler=sampler,
                                                sigmas=sigmas, latent_image=latent).result[0]
    torch.testing.assert_close(out["samples"], custom["samples"], rtol=1e-5, atol=1e-5)
    reference_size = host.nodes.common_ksampler(exact_model, 3, 5, 1.0, "euler", "logsnr_resolution", positive,
                                                positive, latent)[0]
    assert not torch.equal(out["samples"], reference_size["samples"])
