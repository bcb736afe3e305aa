"""The reference model as a real host model: an exact posterior-mean denoiser in a BaseModel.

No weights can be downloaded, so the "network" memorises a finite image set and computes the
exact E[x0 | x_t] (reference/denoiser.py). It is a comfy.model_base.BaseModel with a pixel-space
(ChromaRadiance) latent format inside a ModelPatcher, so KSampler, clones, object patches,
wrappers and memory management treat it like a loaded checkpoint. Like a real network it only
sees the timestep t and answers from the schedule it was "trained" with, which need not be the
host's sampling schedule (a zero-terminal-SNR model loaded into an ordinary host).

About 280 lines in one module: the config, the network, the builder and the two nodes are the
parts of this one model and are used nowhere apart (the math itself lives in reference/).
"""
from __future__ import annotations

import functools

import comfy.latent_formats
import comfy.model_base
import comfy.model_management
import comfy.model_patcher
import comfy.patcher_extension
import comfy.supported_models_base
import torch
from comfy_api.latest import io

from ..reference.datasets import DATASETS, SUBSETS, render_dataset, subset_masks
from ..reference.denoiser import (
    TRAINED_SCHEDULES,
    alphas_cumprod_at,
    eps_from_x0,
    posterior_mean_x0,
    trained_alphas_cumprod,
    v_from_x0,
)
from .errors import node_error
from .schema_extras import search_aliases
from .validation import SchemaCheckedNode, check_arguments

MODEL_NODE_ID = "ZSNRReferenceModel"
CONDITION_NODE_ID = "ZSNRReferenceCondition"
PREDICTIONS = ("v_prediction", "epsilon")
MODEL_TYPES = {"v_prediction": comfy.model_base.ModelType.V_PREDICTION, "epsilon": comfy.model_base.ModelType.EPS}
CANONICAL_SIZE = 64  # built-in datasets are memorised (and split into subsets) at 64x64
MAX_CACHED_SIZES = 4
# One rendering holds every memorised image at the latent's size in float64: 200 images fit up to
# about 470x470. Beyond that a request would take the server's memory, so it is refused instead.
MAX_MEMORISED_BYTES = 2**30

# The host samples with the ordinary schedule of the family the model was trained in; a network
# trained on the rescaled (zsnr) schedule gets no special treatment until ZeroTerminalSNR-style
# patching. ComfyUI's "linear" is SD's scaled_linear and its "sqrt_linear" is DDPM's linear.
HOST_SAMPLING_SETTINGS = {
    "scaled_linear": {"beta_schedule": "linear", "linear_start": 0.00085, "linear_end": 0.012},
    "linear": {"beta_schedule": "sqrt_linear", "linear_start": 1e-4, "linear_end": 0.02},
    "cosine": {"beta_schedule": "cosine"},
}


def schedule_family(trained_schedule: str) -> str:
    return trained_schedule.removesuffix("_zsnr")


class ReferenceModelConfig(comfy.supported_models_base.BASE):
    """Model config of the reference model: pixel space, 3 channels, float32."""

    unet_extra_config = {}
    latent_format = comfy.latent_formats.ChromaRadiance
    supported_inference_dtypes = [torch.float32]
    # BaseModel.memory_required = batch·H·W · 0.15 · factor MiB; one evaluation holds about five
    # float64 copies of the 3-channel batch (~120 bytes per batch·pixel), hence 120 / (0.15·2^20).
    memory_usage_factor = 7.6e-4


class ReferenceDenoiserNet(torch.nn.Module):
    """The "diffusion model": x_t and t in, eps or v out, exactly as a trained network would.

    memorised_images (a buffer, so module_size and device moves see it) holds the images at their
    canonical size; renderings at other latent sizes live in a small float64 cache per
    (height, width, device), kept off the state dict.
    """

    def __init__(self, dataset=None, trained_schedule="scaled_linear_zsnr", prediction="v_prediction",
                 memorised_images=None, device=None, operations=None, **_unused):
        super().__init__()
        self.dataset = dataset
        self.trained_schedule = trained_schedule
        self.prediction = prediction
        # a plain attribute, not a buffer: model.to(float16) must not round the schedule
        self.trained_alphas_cumprod = trained_alphas_cumprod(trained_schedule)
        if memorised_images is None:
            memorised_images = render_dataset(dataset, CANONICAL_SIZE, CANONICAL_SIZE)
        self.register_buffer("memorised_images", memorised_images.to(device=device, dtype=torch.float32))
        masks = subset_masks(memorised_images)
        self.subset_masks = torch.stack([masks[name] for name in SUBSETS])  # [K, N], fixed per image
        self._rendered: dict[tuple, torch.Tensor] = {}

    @property
    def dtype(self) -> torch.dtype:
        return self.memorised_images.dtype

    def memorised_at(self, height: int, width: int, device: torch.device) -> torch.Tensor:
        """The memorised images at the latent's size, float64 on `device` (rendered or resized once)."""
        key = (height, width, str(device))
        if key not in self._rendered:
            count, channels = self.memorised_images.shape[:2]
            needed = count * channels * height * width * 8
            if needed > MAX_MEMORISED_BYTES:
                raise node_error(MODEL_NODE_ID, "latent size", f"{width}x{height}",
                                 f"a latent whose {count} memorised images fit in {MAX_MEMORISED_BYTES >> 20} MiB "
                                 f"at its size ({needed >> 20} MiB here): use a smaller empty latent")
            if self.dataset is not None:
                images = render_dataset(self.dataset, height, width)
            else:
                images = torch.nn.functional.interpolate(
                    self.memorised_images.float().cpu(), size=(height, width), mode="bilinear",
                    antialias=True, align_corners=False)
            while len(self._rendered) >= MAX_CACHED_SIZES:
                self._rendered.pop(next(iter(self._rendered)))
            self._rendered[key] = images.to(device=device, dtype=torch.float64)
        return self._rendered[key]

    def allowed_from_context(self, context, batch: int) -> torch.Tensor:
        """Per-sample allowed mask [B, N] from the one-hot subset context [B, L, K]."""
        subsets = len(SUBSETS)
        advice = (f"{MODEL_NODE_ID} is conditioned only by a subset choice: connect a Reference "
                  f"Condition (zsnr) node ({CONDITION_NODE_ID}) to positive and negative")
        if context is None:
            raise ValueError(f"{MODEL_NODE_ID}: the model received no conditioning (context is None). {advice}.")
        if context.ndim != 3 or context.shape[2] != subsets or context.shape[1] < 1:
            raise ValueError(f"{MODEL_NODE_ID}: the conditioning has shape {list(context.shape)}, not the "
                             f"[batch, 1, {subsets}] subset one-hot (a CLIP text conditioning?). {advice}.")
        if context.shape[0] not in (1, batch):
            raise ValueError(f"{MODEL_NODE_ID}: the conditioning holds {context.shape[0]} subset choices for a "
                             f"batch of {batch}. {advice}.")
        rows = context[:, 0].detach().float().cpu()
        if not torch.equal(context.detach().float().cpu(), rows.unsqueeze(1).expand(context.shape)):
            raise ValueError(f"{MODEL_NODE_ID}: the conditioning tokens differ within a sample. {advice}.")
        one_hot = ((rows == 0) | (rows == 1)).all(dim=1) & (rows.sum(dim=1) <= 1)
        if not bool(one_hot.all()):
            raise ValueError(f"{MODEL_NODE_ID}: the conditioning {rows.tolist()} is not a one-hot subset "
                             f"choice over {list(SUBSETS)} (averaged or scaled?). {advice}.")
        # an all-zero row (ConditioningZeroOut) means "no condition": argmax picks index 0, "all"
        chosen = rows.argmax(dim=1).expand(batch)
        return self.subset_masks[chosen]

    def forward(self, x, timesteps, context=None, control=None, transformer_options=None, **kwargs):
        transformer_options = {} if transformer_options is None else transformer_options
        return comfy.patcher_extension.WrapperExecutor.new_class_executor(
            self._forward,
            self,
            comfy.patcher_extension.get_all_wrappers(
                comfy.patcher_extension.WrappersMP.DIFFUSION_MODEL, transformer_options),
        ).execute(x, timesteps, context, control, transformer_options, **kwargs)

    def _forward(self, x, timesteps, context=None, control=None, transformer_options=None, **kwargs):
        if x.ndim != 4 or x.shape[1] != 3:
            raise ValueError(f"{MODEL_NODE_ID}: expects pixel-space latents [batch, 3, height, width] "
                             f"(EmptyChromaRadianceLatentImage, or VAEEncode with the pixel_space VAE), "
                             f"got shape {list(x.shape)}")
        batch = x.shape[0]
        allowed = self.allowed_from_context(context, batch)
        steps = timesteps.detach().reshape(-1).cpu()
        alphas = alphas_cumprod_at(self.trained_alphas_cumprod, steps.expand(batch) if steps.numel() == 1 else steps)
        data = self.memorised_at(x.shape[2], x.shape[3], x.device)
        x0 = posterior_mean_x0(x, alphas, data, allowed)
        to_output = v_from_x0 if self.prediction == "v_prediction" else eps_from_x0
        return to_output(x, alphas, x0).to(x.dtype)


def build_reference_model(dataset: str | None, trained_schedule: str, prediction: str,
                          memorised_images: torch.Tensor | None = None) -> comfy.model_patcher.ModelPatcher:
    """A ModelPatcher around a BaseModel whose diffusion_model is a ReferenceDenoiserNet."""
    config = ReferenceModelConfig({
        "dataset": dataset if memorised_images is None else None,  # None: the user's images
        "trained_schedule": trained_schedule,
        "prediction": prediction,
    })
    config.sampling_settings = dict(HOST_SAMPLING_SETTINGS[schedule_family(trained_schedule)])
    network = functools.partial(ReferenceDenoiserNet, memorised_images=memorised_images)
    offload_device = comfy.model_management.unet_offload_device()
    model = comfy.model_base.BaseModel(config, model_type=MODEL_TYPES[prediction], device=offload_device,
                                       unet_model=network)
    check_host_schedule(model.model_sampling, trained_schedule)
    return comfy.model_patcher.ModelPatcher(
        model, load_device=comfy.model_management.get_torch_device(), offload_device=offload_device)


def check_host_schedule(model_sampling, trained_schedule: str) -> None:
    """The host's float32 sampling sigmas must be our float64 table of the same family."""
    expected = trained_alphas_cumprod(schedule_family(trained_schedule))
    expected_sigmas = ((1 - expected) / expected).sqrt()
    host_sigmas = model_sampling.sigmas.detach().cpu().double()
    if host_sigmas.shape != expected_sigmas.shape or not torch.allclose(host_sigmas, expected_sigmas, rtol=1e-6):
        raise RuntimeError(f"{MODEL_NODE_ID}: the host's sampling schedule for {trained_schedule!r} "
                           "differs from the training table; this ComfyUI version changed make_beta_schedule")


def images_to_latents(images) -> torch.Tensor:
    """Validate an IMAGE batch [B, H, W, 3] in 0..1 and convert it to latents [B, 3, H, W] in [-1, 1]."""
    if not isinstance(images, torch.Tensor):
        raise node_error(MODEL_NODE_ID, "images", type(images).__name__, "an IMAGE batch tensor")
    if images.ndim != 4 or images.shape[-1] != 3:
        raise node_error(MODEL_NODE_ID, "images", images.shape,
                         "an IMAGE batch of shape [count, height, width, 3] (RGB, no alpha)")
    if images.shape[0] < 2:
        raise node_error(MODEL_NODE_ID, "images", images.shape,
                         "at least 2 images (batch them, e.g. with Batch Images) to memorise")
    if not bool(torch.isfinite(images).all()):
        raise node_error(MODEL_NODE_ID, "images", images.shape, "finite pixel values in 0..1")
    return (2 * images.float().clamp(0, 1) - 1).movedim(-1, 1).contiguous()


class ZSNRReferenceModel(SchemaCheckedNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id=MODEL_NODE_ID,
            display_name="Reference Model (exact denoiser, zsnr)",
            category="zsnr/reference",
            **search_aliases("reference model", "exact denoiser"),
            description="A weightless pixel-space model that memorises an image set and predicts the exact "
                        "posterior mean E[x0 | x_t]: the best any trained network could do on that set. Use it to "
                        "see what a schedule and sampler do to brightness without downloading a checkpoint.",
            inputs=[
                io.Combo.Input("dataset", options=list(DATASETS), default="brightness_ramp",
                               tooltip="Built-in image set (200 images generated in code). brightness_ramp: mean "
                                       "brightness uniform in [-0.9, 0.9]; colour_blobs: soft coloured discs. "
                                       "Ignored when 'images' is connected."),
                io.Combo.Input("trained_schedule", options=list(TRAINED_SCHEDULES), default="scaled_linear_zsnr",
                               tooltip="The schedule the model was 'trained' with (diffusers' names). It answers "
                                       "with this schedule's alphā at the timestep it is given. The host samples "
                                       "with the plain schedule of the same family (zsnr samples as scaled_linear "
                                       "until a zero-terminal-SNR node patches the sampling)."),
                io.Combo.Input("prediction", options=list(PREDICTIONS), default="v_prediction",
                               tooltip="What the model outputs: v (needed at zero terminal SNR) or epsilon (cannot "
                                       "work at SNR 0, paper §6)."),
                io.Image.Input("images", optional=True,
                               tooltip="Optional: a batch of at least 2 RGB images to memorise instead of the "
                                       "dataset. They are resized to each latent's size."),
            ],
            outputs=[io.Model.Output(tooltip="A MODEL for KSampler; pair it with Reference Condition (zsnr) "
                                             "and EmptyChromaRadianceLatentImage.")],
        )

    @classmethod
    def execute(cls, dataset: str = "brightness_ramp", trained_schedule: str = "scaled_linear_zsnr",
                prediction: str = "v_prediction", images=None) -> io.NodeOutput:
        check_arguments(cls, dataset=dataset, trained_schedule=trained_schedule, prediction=prediction, images=images)
        latents = None if images is None else images_to_latents(images)
        return io.NodeOutput(build_reference_model(dataset, trained_schedule, prediction, latents))


class ZSNRReferenceCondition(SchemaCheckedNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id=CONDITION_NODE_ID,
            display_name="Reference Condition (zsnr)",
            category="zsnr/reference",
            **search_aliases("reference condition"),
            description="Conditioning for the Reference Model: which subset of its images to draw from. "
                        "With CFG, use a subset as positive and 'all' (or ConditioningZeroOut) as negative.",
            inputs=[
                io.Combo.Input("subset", options=list(SUBSETS), default="all",
                               tooltip="all: every memorised image; dark / bright: the half of the images below / "
                                       "at or above the median mean brightness."),
            ],
            outputs=[io.Conditioning.Output(tooltip="Connect to positive or negative of a sampler that uses "
                                                    "the Reference Model.")],
        )

    @classmethod
    def execute(cls, subset: str = "all") -> io.NodeOutput:
        check_arguments(cls, subset=subset)
        context = torch.zeros((1, 1, len(SUBSETS)), dtype=torch.float32)
        context[0, 0, SUBSETS.index(subset)] = 1.0
        return io.NodeOutput([[context, {}]])


NODES = [ZSNRReferenceModel, ZSNRReferenceCondition]
