"""The colour networks (docs/trained_colour_networks.md) on the real host (their sha256 and metadata:
tests/host/test_trained_reference_pair.py, for every shipped network): they load as host models
declaring what they were trained on, the Colour Class node conditions them, they sample finitely with every kind of sampler, and the paper's headline claims
hold on them (Lin et al. 2023 §3 Fig. 1, §3.1-3.2, §3.4), asserted loosely enough to survive seeds
and tightly enough to catch a broken network (docs/trained_colour_networks.md has the figures on
256 seeds that the bounds leave room around)."""
from __future__ import annotations

import sys
import warnings

import pack_nodes
import pytest
import torch
from zsnr_core.reference import colour_shapes, metrics

NODE, CONDITION = "ZSNRTrainedReferenceModel", "ZSNRColourClass"
RECIPES = {"colour_flawed": ("EPS", False), "colour_fixed": ("V_PREDICTION", True), "colour_v_sd": ("V_PREDICTION", False)}


@pytest.fixture(scope="module")
def loader(host):
    return sys.modules[host.node[NODE].__module__]


@pytest.fixture(scope="module")
def data():
    images, labels = colour_shapes.render_colour_shapes(colour_shapes.DEFAULT_TRAINING_COUNT)
    return images, labels


def trained(host, recipe):
    return host.node[NODE].execute(recipe=recipe).result[0]


def hue(host, name="none"):
    return host.node[CONDITION].execute(hue=name).result[0]


@pytest.mark.parametrize("recipe", sorted(RECIPES))
def test_loaded_like_a_checkpoint(host, recipe):
    model_type, zsnr = RECIPES[recipe]
    model = trained(host, recipe).model
    assert model.model_type.name == model_type and model.diffusion_model.num_classes == len(colour_shapes.CLASS_NAMES)
    assert model.model_config.sampling_settings.get("zsnr", False) is zsnr
    top = float(model.model_sampling.sigmas.double()[-1])
    # SD's scaled_linear top sigma sqrt((1 - 0.0047) / 0.0047) = 14.6; the host's zsnr clamp 4.9e-8 gives 4518.8
    assert top == pytest.approx(4518.76, rel=1e-3) if zsnr else top == pytest.approx(14.61, rel=1e-3)


def test_colour_class_node_is_a_one_hot_and_none_is_the_null_class(host, loader):
    red = hue(host, "red")[0][0]
    assert red.shape == (1, 1, 7) and float(red[0, 0, 1]) == 1.0 and float(red.sum()) == 1.0
    assert not hue(host, "none")[0][0].any()
    label, _ = loader.class_from_conditioning(hue(host, "blue")[0][0], colour_shapes.CLASS_NAMES)
    assert int(label) == colour_shapes.CLASS_NAMES.index("blue")
    message = host.node[CONDITION].validate_inputs(hue="purple")
    assert isinstance(message, str) and f"{CONDITION}: input 'hue' = 'purple'" in message


def test_a_shapes_condition_on_a_colour_network_names_the_colour_node(host):
    model = pack_nodes.zero_snr(host, trained(host, "colour_fixed"))
    with pytest.raises(Exception, match=f"{NODE} \\(a colour recipe\\) is conditioned by a hue: connect a Colour Class"):
        pack_nodes.ksample(host, model, "euler", "trailing", 2, seeds=1, size=32,
                           positive=pack_nodes.condition(host, "dark"), negative=pack_nodes.condition(host, "all"))


@pytest.mark.parametrize("sampler", ["euler", "euler_ancestral", "dpmpp_2m_sde"])
@pytest.mark.parametrize("recipe", sorted(RECIPES))
def test_samples_finitely(host, recipe, sampler):
    model = trained(host, recipe)
    if recipe == "colour_fixed":
        model = pack_nodes.zero_snr(host, model)
    samples = pack_nodes.ksample(host, model, sampler, "trailing", 4, seeds=3, size=32, cfg=3.0,
                                 positive=hue(host, "green"), negative=hue(host))
    assert torch.isfinite(samples).all() and float(samples.std()) > 0.01


def brightness_spread(host, model, scheduler, data, seeds=64):
    samples = pack_nodes.ksample(host, model, "euler", scheduler, 25, seeds=seeds, size=32,
                                 positive=hue(host), negative=hue(host))
    return metrics.spread_ratio(samples.double().flatten(1).mean(dim=1), data[0].double().flatten(1).mean(dim=1))


def test_fixed_covers_the_brightness_range_and_flawed_does_not(host, data):
    """§3 Fig. 1 and §3.1-3.2 on 64 seeds: the fixed network with ZeroTerminalSNR exact and trailing
    spans the data's brightness range; the flawed one from `leading` stays near medium brightness."""
    fixed = brightness_spread(host, pack_nodes.zero_snr(host, trained(host, "colour_fixed")), "trailing", data)
    flawed = brightness_spread(host, trained(host, "colour_flawed"), "leading", data)
    assert fixed > 0.7, f"fixed r {fixed:.2f}: the ZTSNR network no longer reaches the ends of the range"
    assert flawed < 0.6, f"flawed r {flawed:.2f}: the flawed network is not held near medium brightness any more"
    assert fixed - flawed > 0.25


def test_guidance_follows_the_class_and_rescale_tames_high_cfg(host, data):
    """§3.4 on 8 seeds per hue: at CFG 7.5 the samples take their class's hue; at CFG 12 plain CFG
    pushes latents beyond [-1, 1] (over-exposure / over-saturation) and Algorithm 2 reduces that."""
    exact = pack_nodes.zero_snr(host, trained(host, "colour_fixed"))
    rescaled = host.node["ZSNRRescaleCFG"].execute(model=exact, multiplier=0.7).result[0]
    follows, beyond = [], {"plain": [], "rescaled": []}
    for index, name in enumerate(colour_shapes.HUE_NAMES, start=1):
        for variant, model, cfg in (("plain", exact, 7.5), ("plain", exact, 12.0), ("rescaled", rescaled, 12.0)):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                samples = pack_nodes.ksample(host, model, "euler", "trailing", 12, seeds=8, size=32, cfg=cfg,
                                             positive=hue(host, name), negative=hue(host), seed=index)
            if cfg == 7.5:
                follows.append(float((colour_shapes.hue_class(samples) == index).double().mean()))
            else:
                beyond[variant].append(float((samples.abs() > 1).double().mean()))
    assert sum(follows) / len(follows) > 0.8, f"the class is not followed at CFG 7.5: {follows}"
    plain, tamed = sum(beyond["plain"]) / 6, sum(beyond["rescaled"]) / 6
    assert plain > 0.01 and tamed < 0.7 * plain, f"|x| > 1 fraction at CFG 12: plain {plain:.4f}, rescaled {tamed:.4f}"
