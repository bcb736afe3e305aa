"""The pack's trained networks as real host models (docs/trained_reference_pair.md,
docs/trained_colour_networks.md).

Small class-conditional UNets (the host's own comfy.ldm UNetModel) trained by
tools/train_reference_unet.py: on reference/procedural_shapes.py `flawed` (SD's scaled_linear
schedule, epsilon) and `fixed` (the same schedule after Algorithm 1, v prediction); on the hue
classes of reference/colour_shapes.py `colour_flawed`, `colour_fixed` and `colour_v_sd` (v
prediction on SD's schedule, the SD 2.x-v stand-in). The loader
checks each shipped file against the sha256 in models/trained_reference_pair.json, builds a
comfy.model_base.BaseModel from the UNet config in the file's metadata and puts it in a
ModelPatcher with the host's devices, as a checkpoint loader does. Its sampling_settings declare
what it was trained on, the way a checkpoint's model config does: flawed is EPS on SD's schedule;
fixed is V_PREDICTION with the host's own `zsnr` setting (ModelSamplingDiscrete clamps alphā_T to
4.9e-8, as for NoobAI-style v checkpoints), so ZeroTerminalSNR recognises the clamp and makes it
exact (README "How exact SNR 0 works inside the host").

Conditioning: the Reference Condition (zsnr) node for the shapes recipes (its subset one-hot all,
dark, bright is the class, reference/procedural_shapes.CLASS_NAMES), the Colour Class (zsnr) node
for the colour recipes (none, then six hues, reference/colour_shapes.CLASS_NAMES). extra_conds
turns the one-hot into the class label `y` and the cross-attention context the UNet was trained
with (the null class 0 has an all-zero context, so ConditioningZeroOut is unconditional too).
"""
from __future__ import annotations

import functools
import hashlib
import json
from pathlib import Path

import comfy.conds
import comfy.latent_formats
import comfy.model_base
import comfy.model_management
import comfy.model_patcher
import comfy.supported_models_base
import comfy.utils
import torch
from comfy_api.latest import io

from ..reference import colour_shapes
from ..reference.procedural_shapes import CLASS_NAMES as SHAPES_CLASS_NAMES
from ..reference.procedural_shapes import NULL_CLASS
from ..schedules.betas import alphas_cumprod_from_betas, rescale_zero_terminal_snr, scaled_linear_betas
from .reference_model import CONDITION_NODE_ID
from .schema_extras import search_aliases
from .validation import SchemaCheckedNode, check_arguments

NODE_ID = "ZSNRTrainedReferenceModel"
MODELS_DIR = Path(__file__).resolve().parent.parent / "models"
PAIR_CONFIG = MODELS_DIR / "trained_reference_pair.json"
RECIPES = ("flawed", "fixed", "colour_flawed", "colour_fixed", "colour_v_sd")
COLOUR_CONDITION_NODE_ID = "ZSNRColourClass"
METADATA_KEY = "zsnr_trained_reference"
MODEL_TYPES = {"epsilon": comfy.model_base.ModelType.EPS, "v_prediction": comfy.model_base.ModelType.V_PREDICTION}


def pair_config() -> dict:
    """models/trained_reference_pair.json: per recipe its file name and sha256."""
    with PAIR_CONFIG.open(encoding="utf-8") as handle:
        return json.load(handle)


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@functools.lru_cache(maxsize=4)
def _verified_weights(path: str, size: int, mtime_ns: int, expected_sha256: str):
    """(state dict, metadata) of a shipped file after its sha256 matched (cached per file version)."""
    found = sha256_of(Path(path))
    if found != expected_sha256:
        raise RuntimeError(f"{NODE_ID}: {path} has sha256 {found}, not the {expected_sha256} recorded in "
                           f"{PAIR_CONFIG.name}: the file is damaged or was replaced (git checkout models/ restores it)")
    state, metadata = comfy.utils.load_torch_file(path, safe_load=True, return_metadata=True)
    if not metadata or METADATA_KEY not in metadata:
        raise RuntimeError(f"{NODE_ID}: {path} carries no '{METADATA_KEY}' metadata (not written by "
                           "tools/train_reference_unet.py)")
    return state, json.loads(metadata[METADATA_KEY])


def load_recipe(recipe: str) -> tuple[dict, dict]:
    """The state dict and training metadata of a shipped recipe, sha256-checked."""
    entry = pair_config()[recipe]
    path = MODELS_DIR / entry["file"]
    if not path.is_file():
        raise RuntimeError(f"{NODE_ID}: the weights {path} are missing (they ship with the pack; git checkout models/)")
    stat = path.stat()
    state, metadata = _verified_weights(str(path), stat.st_size, stat.st_mtime_ns, entry["sha256"])
    if metadata.get("recipe") != recipe:
        raise RuntimeError(f"{NODE_ID}: {path} was trained as recipe {metadata.get('recipe')!r}, not {recipe!r}")
    return dict(state), metadata


def host_sampling_settings(metadata: dict) -> dict:
    """What the model was trained on, in the host's terms (its "linear" is SD's scaled_linear)."""
    settings = {"beta_schedule": "linear", "linear_start": metadata["beta_start"], "linear_end": metadata["beta_end"],
                "timesteps": metadata["timesteps"]}
    if metadata["zero_terminal_snr"]:
        settings["zsnr"] = True  # the host's own zero-terminal-SNR option (clamped, ModelSamplingDiscrete)
    return settings


def trained_alphas_cumprod(metadata: dict) -> torch.Tensor:
    """The float64 alphā table the network was trained with (tools/train_reference_unet.py)."""
    betas = scaled_linear_betas(metadata["timesteps"], metadata["beta_start"], metadata["beta_end"])
    if metadata["zero_terminal_snr"]:
        betas = rescale_zero_terminal_snr(betas)
    return alphas_cumprod_from_betas(betas)


def check_host_schedule(model_sampling, metadata: dict) -> None:
    """The host's sampling table must be the training table (up to float32 and the host's clamp of
    the last alphā under zsnr, which ZeroTerminalSNR replaces by exact 0)."""
    expected = trained_alphas_cumprod(metadata)[:-1]
    host = 1 / (1 + model_sampling.sigmas.detach().cpu().double()[:-1] ** 2)
    if host.shape != expected.shape or not torch.allclose(host, expected, rtol=1e-4, atol=1e-7):
        raise RuntimeError(f"{NODE_ID}: the host's sampling schedule differs from the training schedule of "
                           f"{metadata['recipe']!r}; this ComfyUI version changed make_beta_schedule or its zsnr rescale")


class TrainedReferenceConfig(comfy.supported_models_base.BASE):
    """Model config: pixel space (ChromaRadiance latent format, 3 channels in [-1, 1]), float32."""

    latent_format = comfy.latent_formats.ChromaRadiance
    supported_inference_dtypes = [torch.float32]
    # BaseModel.memory_required ≈ batch·H·W · 0.15 · factor MiB; the UNet holds ~2.5 KB of
    # activations per pixel (32-64 channels, float32), hence 2.5e-3 / 0.15.
    memory_usage_factor = 0.017


class TrainedReferenceModel(comfy.model_base.BaseModel):
    """BaseModel whose conditioning is a class: y (label) and the class context, from the
    Reference Condition or Colour Class one-hot."""

    def extra_conds(self, **kwargs):
        out = super().extra_conds(**kwargs)
        labels, context = class_from_conditioning(kwargs.get("cross_attn"), self.zsnr_trained_reference["classes"])
        out["y"] = comfy.conds.CONDRegular(labels)
        out["c_crossattn"] = comfy.conds.CONDCrossAttn(context)
        return out


def class_from_conditioning(cross_attn, class_names=SHAPES_CLASS_NAMES) -> tuple[torch.Tensor, torch.Tensor]:
    """(label int64 [1], context [1, 1, K]) from a class one-hot [1, L, K] over the model's classes."""
    classes = len(class_names)
    if tuple(class_names) == colour_shapes.CLASS_NAMES:
        advice = (f"{NODE_ID} (a colour recipe) is conditioned by a hue: connect a Colour Class (zsnr) node "
                  f"({COLOUR_CONDITION_NODE_ID}: none = unconditional, {', '.join(colour_shapes.HUE_NAMES)}) "
                  "to positive and negative")
    else:
        advice = (f"{NODE_ID} is conditioned by a class: connect a Reference Condition (zsnr) node "
                  f"({CONDITION_NODE_ID}: all = unconditional, dark, bright) to positive and negative")
    if cross_attn is None:
        raise ValueError(f"{NODE_ID}: the model received no conditioning. {advice}.")
    if cross_attn.ndim != 3 or cross_attn.shape[0] != 1 or cross_attn.shape[1] < 1 or cross_attn.shape[2] != classes:
        raise ValueError(f"{NODE_ID}: the conditioning has shape {list(cross_attn.shape)}, not the [1, 1, {classes}] "
                         f"class one-hot (a CLIP text conditioning?). {advice}.")
    rows = cross_attn.detach().float().cpu()[0]
    row = rows[0]
    if not torch.equal(rows, row.expand_as(rows)) or not bool(((row == 0) | (row == 1)).all()) or row.sum() > 1:
        raise ValueError(f"{NODE_ID}: the conditioning {rows.tolist()} is not one class choice over "
                         f"{list(class_names)} (averaged or scaled?). {advice}.")
    label = int(row.argmax()) if row.sum() == 1 else NULL_CLASS  # all zeros (ConditioningZeroOut): null
    context = torch.zeros((1, 1, classes))
    if label != NULL_CLASS:
        context[0, 0, label] = 1.0
    return torch.tensor([label], dtype=torch.int64), context


def build_trained_model(recipe: str) -> comfy.model_patcher.ModelPatcher:
    """A ModelPatcher around a TrainedReferenceModel with the recipe's shipped weights."""
    state, metadata = load_recipe(recipe)
    unet_config = dict(metadata["unet_config"], dtype=torch.float32)
    config = TrainedReferenceConfig(unet_config)
    config.sampling_settings = host_sampling_settings(metadata)
    offload_device = comfy.model_management.unet_offload_device()
    model = TrainedReferenceModel(config, model_type=MODEL_TYPES[metadata["prediction"]], device=offload_device)
    missing, unexpected = model.diffusion_model.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise RuntimeError(f"{NODE_ID}: the weights of {recipe!r} do not fit the UNet config in their metadata "
                           f"(missing {missing[:3]}, unexpected {unexpected[:3]})")
    model.zsnr_trained_reference = metadata  # what it was trained on, for benchmarks and the demo
    check_host_schedule(model.model_sampling, metadata)
    return comfy.model_patcher.ModelPatcher(
        model, load_device=comfy.model_management.get_torch_device(), offload_device=offload_device)


class ZSNRTrainedReferenceModel(SchemaCheckedNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id=NODE_ID,
            display_name="Trained Reference Model (zsnr)",
            category="zsnr/reference",
            **search_aliases("trained reference", "tiny unet"),
            description="A small class-conditional UNet (the host's own SD-style UNetModel, 32x32 pixel space) "
                        "trained by this pack on procedural images, in recipes that differ only in schedule "
                        "and prediction: flawed (SD schedule, epsilon), fixed (zero terminal SNR, v) and, on "
                        "the colour images, v_sd (SD schedule, v). Loaded like a checkpoint, so every node and "
                        "sampler applies to it as to yours.",
            inputs=[
                io.Combo.Input("recipe", options=list(RECIPES), default="fixed",
                               tooltip="flawed: trained on SD's scaled_linear schedule (terminal SNR 0.0047) with "
                                       "epsilon prediction. fixed: the same schedule rescaled to zero terminal SNR "
                                       "(Algorithm 1) with v prediction; it declares the host's zsnr setting. "
                                       "colour_*: the same recipes on colourful hue classes (condition them with "
                                       "Colour Class (zsnr)); colour_v_sd is v prediction on SD's schedule, "
                                       "like SD 2.x-v."),
            ],
            outputs=[io.Model.Output(tooltip="A MODEL for KSampler; condition it with Reference Condition (zsnr) "
                                             "(all = unconditional, dark, bright), a colour recipe with Colour "
                                             "Class (zsnr), and sample an EmptyChromaRadianceLatentImage of 32x32.")],
        )

    @classmethod
    def execute(cls, recipe: str = "fixed") -> io.NodeOutput:
        check_arguments(cls, recipe=recipe)
        return io.NodeOutput(build_trained_model(recipe))


class ZSNRColourClass(SchemaCheckedNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id=COLOUR_CONDITION_NODE_ID,
            display_name="Colour Class (zsnr)",
            category="zsnr/reference",
            **search_aliases("colour class", "color class", "hue"),
            description="Conditioning for the colour recipes of Trained Reference Model (zsnr): the hue class "
                        "of the image. With CFG, use a hue as positive and none (or ConditioningZeroOut) as negative.",
            inputs=[
                io.Combo.Input("hue", options=list(colour_shapes.CLASS_NAMES), default="none",
                               tooltip="none: unconditional (the null class); otherwise the background hue the "
                                       "network draws (red 0°, yellow 60°, green 120°, cyan 180°, blue 240°, "
                                       "magenta 300°)."),
            ],
            outputs=[io.Conditioning.Output(tooltip="Connect to positive or negative of a sampler that uses a "
                                                    "colour recipe of Trained Reference Model (zsnr).")],
        )

    @classmethod
    def execute(cls, hue: str = "none") -> io.NodeOutput:
        check_arguments(cls, hue=hue)
        context = torch.zeros((1, 1, len(colour_shapes.CLASS_NAMES)), dtype=torch.float32)
        if hue != colour_shapes.CLASS_NAMES[colour_shapes.NULL_CLASS]:
            context[0, 0, colour_shapes.CLASS_NAMES.index(hue)] = 1.0
        return io.NodeOutput([[context, {}]])


NODES = [ZSNRTrainedReferenceModel, ZSNRColourClass]
