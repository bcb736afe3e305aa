"""The trained reference pair (docs/trained_reference_pair.md) on the real host: the training
script trains and writes a loadable file; the shipped weights match their recorded sha256, load
through ZSNRTrainedReferenceModel as host models declaring what they were trained on, and sample
finitely with an ODE, an ancestral and an SDE sampler, with and without ZeroTerminalSNR."""
from __future__ import annotations

import sys
import warnings

import pack_nodes
import pytest
import torch
import train_reference_unet as training

NODE = "ZSNRTrainedReferenceModel"
SAMPLERS = ("euler", "euler_ancestral", "dpmpp_2m_sde")


@pytest.fixture(scope="module")
def loader(host):
    """The node module as the host imported it (nodes/trained_model.py)."""
    return sys.modules[host.node[NODE].__module__]


def trained(host, recipe):
    return host.node[NODE].execute(recipe=recipe).result[0]


def evaluation_loss(unet, recipe, images, labels):
    """The training loss on one fixed batch (fixed timesteps, noise and labels)."""
    generator = torch.Generator().manual_seed(1234)
    count = images.shape[0]
    timesteps = torch.randint(0, training.TIMESTEPS, (count,), generator=generator)
    noise = torch.randn(images.shape, generator=generator)
    with torch.no_grad():
        return float(training.training_loss(unet, images, labels, timesteps, noise, training.recipe_alphas_cumprod(recipe),
                                            training.RECIPES[recipe]["prediction"], unet.num_classes))


@pytest.mark.parametrize("recipe", ["flawed", "fixed", "colour_v_sd"])
def test_training_script_trains_and_writes_a_loadable_file(host, tmp_path, recipe):
    from safetensors.torch import load_file

    torch.manual_seed(0)
    images, labels = training.training_images(recipe, 16)
    classes = len(training.recipe_dataset(recipe)["classes"])
    before = evaluation_loss(training.build_unet(num_classes=classes), recipe, images, labels)  # train()'s seed-0 init
    output = tmp_path / f"{recipe}.safetensors"
    result = training.train(recipe, steps=24, output=output, seed=0, threads=1, log_every=8, dataset_count=16,
                            batch=8, warmup=1, log=lambda *args, **kwargs: None)
    unet = training.build_unet(num_classes=classes)
    unet.load_state_dict({key: value.float() for key, value in load_file(str(output)).items()}, strict=True)
    after = evaluation_loss(unet, recipe, images, labels)
    assert after < 0.8 * before, f"{recipe}: the saved EMA weights did not learn ({before:.4f} -> {after:.4f})"
    losses = [entry["loss"] for entry in result["history"]]
    assert len(losses) == 3 and losses[-1] < losses[0], f"{recipe}: the training loss did not fall: {losses}"
    assert result["metadata"]["recipe"] == recipe and result["metadata"]["prediction"] == training.RECIPES[recipe]["prediction"]


def test_a_checkpoint_at_step_n_is_what_steps_n_writes(host, tmp_path):
    """docs/trained_reference_pair.md ships the step-1000 saves of longer runs: nothing in a step
    depends on the total step count, so they are the weights `--steps 1000` writes."""
    from safetensors.torch import load_file

    quick = {"seed": 0, "threads": 1, "dataset_count": 16, "batch": 4, "warmup": 1}
    longer, seen = tmp_path / "longer.safetensors", {}

    def log(message, **_kwargs):  # at step 4 the file still holds the step-2 save
        if "step 4/4" in message:
            seen.update(load_file(str(longer)))

    training.train("fixed", steps=4, output=longer, log_every=2, save_every=2, log=log, **quick)
    training.train("fixed", steps=2, output=tmp_path / "short.safetensors", log_every=2,
                   log=lambda *args, **kwargs: None, **quick)
    short = load_file(str(tmp_path / "short.safetensors"))
    assert seen.keys() == short.keys() and all(torch.equal(seen[key], short[key]) for key in short)
    final = load_file(str(longer))
    assert not all(torch.equal(final[key], short[key]) for key in short), "step 4 should differ from step 2"


def test_training_recipes_share_everything_but_schedule_and_prediction():
    flawed, fixed = training.recipe_alphas_cumprod("flawed"), training.recipe_alphas_cumprod("fixed")
    assert flawed[-1] > 1e-3 and fixed[-1] == 0  # SD's terminal alphā 0.0047 vs Algorithm 1's exact 0
    assert torch.isclose(flawed[0], fixed[0], rtol=1e-12)  # Algorithm 1 keeps alphā_0
    assert training.RECIPES["flawed"]["prediction"] == "epsilon" and training.RECIPES["fixed"]["prediction"] == "v_prediction"
    with pytest.raises(ValueError, match="unknown recipe 'sd'"):
        training.train("sd", 1, None)


@pytest.mark.parametrize("recipe", list(training.RECIPES))  # every shipped network, grey and colour
def test_shipped_weights_match_their_recorded_sha256(loader, recipe):
    entry = loader.pair_config()[recipe]
    path = loader.MODELS_DIR / entry["file"]
    assert path.stat().st_size < 8 * 2**20, "a shipped weight file should be a few MB"
    assert loader.sha256_of(path) == entry["sha256"]
    _, metadata = loader.load_recipe(recipe)
    dataset = training.recipe_dataset(recipe)
    assert metadata["recipe"] == recipe and metadata["classes"] == list(dataset["classes"])
    assert metadata["unet_config"] == training.unet_config(len(dataset["classes"]))
    assert metadata["dataset"]["generator"] == dataset["config"]["generator"]


def test_a_changed_file_is_refused(loader, tmp_path, monkeypatch):
    config = loader.pair_config()
    damaged = tmp_path / config["fixed"]["file"]
    data = bytearray((loader.MODELS_DIR / config["fixed"]["file"]).read_bytes())
    data[-1] ^= 0xFF
    damaged.write_bytes(bytes(data))
    monkeypatch.setattr(loader, "MODELS_DIR", tmp_path)
    with pytest.raises(RuntimeError, match=f"{NODE}: .* has sha256 .* not the {config['fixed']['sha256']}"):
        loader.load_recipe("fixed")


@pytest.mark.parametrize("recipe, model_type, zsnr", [("flawed", "EPS", False), ("fixed", "V_PREDICTION", True)])
def test_loaded_like_a_checkpoint(host, loader, recipe, model_type, zsnr):
    import comfy.model_base
    import comfy.model_management
    import comfy.model_patcher

    patcher = trained(host, recipe)
    assert isinstance(patcher, comfy.model_patcher.ModelPatcher)
    model = patcher.model
    assert isinstance(model, comfy.model_base.BaseModel) and model.model_type.name == model_type
    assert patcher.load_device == comfy.model_management.get_torch_device()
    assert type(model.diffusion_model).__name__ == "UNetModel" and model.diffusion_model.num_classes == 3
    settings = model.model_config.sampling_settings
    assert settings["beta_schedule"] == "linear" and settings.get("zsnr", False) is zsnr
    sigmas = model.model_sampling.sigmas.double()
    assert float(sigmas[-1]) == pytest.approx(4518.76, rel=1e-3) if zsnr else float(sigmas[-1]) == pytest.approx(14.61, rel=1e-3)


def test_zero_terminal_snr_upgrades_the_declared_host_clamp(host):
    """fixed declares the host's zsnr option (alphā_T clamped to 4.9e-8); ZeroTerminalSNR
    recognises that clamp on the declared SD schedule and makes it exact: its table is then the
    very table the network was trained with (Algorithm 1 in float64, alphā_T = 0)."""
    zero_snr_module = sys.modules[host.node["ZeroTerminalSNR"].__module__]
    fixed = trained(host, "fixed")
    base, terminal, _ = zero_snr_module.model_schedule("test", fixed)
    assert terminal == "clamp_comfy"
    assert torch.allclose(base, training.recipe_alphas_cumprod("flawed"), rtol=1e-6)  # the declared SD schedule
    exact = pack_nodes.zero_snr(host, fixed).get_model_object("model_sampling")
    assert exact.zsnr_alphas_cumprod[-1] == 0.0
    assert torch.allclose(exact.zsnr_alphas_cumprod, training.recipe_alphas_cumprod("fixed"), rtol=1e-9, atol=1e-15)


def test_v_prediction_adapter_applies_as_to_a_checkpoint(host):
    """VPredictionAdapter keeps the fixed model's declared host clamp (it only states v), and
    its samples equal the unadapted model's: the declaration was already right."""
    fixed = trained(host, "fixed")
    adapted = pack_nodes.v_adapter(host, fixed)
    assert adapted.get_model_object("model_sampling").zsnr_terminal == "clamp_comfy"
    runs = [pack_nodes.ksample(host, model, "euler", "simple", 4, seeds=2, size=32) for model in (fixed, adapted)]
    assert torch.allclose(runs[0], runs[1], atol=1e-5)


@pytest.mark.parametrize("sampler", SAMPLERS)
@pytest.mark.parametrize("recipe", ["flawed", "fixed"])
@pytest.mark.parametrize("with_zero_snr", [False, True], ids=["declared", "ZeroTerminalSNR"])
def test_samples_finitely(host, recipe, sampler, with_zero_snr):
    model = trained(host, recipe)
    if with_zero_snr:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # an epsilon model rescaled to SNR 0 warns (README)
            model = pack_nodes.zero_snr(host, model)
    positive, negative = pack_nodes.condition(host, "dark"), pack_nodes.condition(host, "all")
    samples = pack_nodes.ksample(host, model, sampler, "trailing", 4, seeds=3, size=32, cfg=3.0,
                                 positive=positive, negative=negative)
    assert samples.shape == (3, 3, 32, 32)
    assert torch.isfinite(samples).all(), f"{recipe} {sampler} produced non-finite samples"
    assert float(samples.std()) > 0.01, "the samples are constant: the network did not run"


def test_guidance_nodes_apply(host):
    import comfy_extras.nodes_model_advanced as advanced

    exact = pack_nodes.zero_snr(host, trained(host, "fixed"))
    positive, negative = pack_nodes.condition(host, "bright"), pack_nodes.condition(host, "all")
    ours = host.node["ZSNRRescaleCFG"].execute(model=exact, multiplier=0.7).result[0]
    theirs = advanced.RescaleCFG().patch(exact, 0.7)[0]
    runs = [pack_nodes.ksample(host, model, "euler", "trailing", 4, seeds=2, size=32, cfg=7.5,
                               positive=positive, negative=negative) for model in (exact, ours, theirs)]
    assert all(torch.isfinite(run).all() for run in runs)
    assert not torch.allclose(runs[0], runs[1]), "ZSNRRescaleCFG changed nothing at CFG 7.5"


def test_classes_condition_the_network(host):
    """dark and bright conditionings give darker and brighter samples (the class input is used)."""
    exact = pack_nodes.zero_snr(host, trained(host, "fixed"))
    mean = {}
    for subset in ("dark", "bright"):
        condition = pack_nodes.condition(host, subset)
        samples = pack_nodes.ksample(host, exact, "euler", "trailing", 8, seeds=6, size=32, cfg=1.0,
                                     positive=condition, negative=condition)
        mean[subset] = float(samples.mean())
    assert mean["dark"] < 0 < mean["bright"], mean


def test_bad_input_names_node_and_input(host, loader):
    node = host.node[NODE]
    message = node.validate_inputs(recipe="sd15")
    assert isinstance(message, str) and f"{NODE}: input 'recipe' = 'sd15'" in message and "flawed | fixed" in message
    with pytest.raises(ValueError, match=f"{NODE}: input 'recipe' = 'sd15' is not allowed"):
        node.execute(recipe="sd15")
    with pytest.raises(ValueError, match=f"{NODE}: the conditioning has shape \\[1, 77, 768\\]"):
        loader.class_from_conditioning(torch.zeros(1, 77, 768))
    with pytest.raises(ValueError, match="not one class choice"):
        loader.class_from_conditioning(torch.tensor([[[0.0, 0.5, 0.5]]]))
    label, context = loader.class_from_conditioning(torch.zeros(1, 1, 3))  # ConditioningZeroOut: null class
    assert int(label) == 0 and not context.any()
