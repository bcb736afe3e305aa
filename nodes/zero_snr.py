"""ZeroTerminalSNR (Algorithm 1 on a model's own schedule) and VPredictionAdapter."""
from __future__ import annotations

import logging

import comfy.model_sampling
import torch
from comfy.ldm.modules.diffusionmodules.util import make_beta_schedule
from comfy_api.latest import io

from ..schedules.betas import alphas_cumprod_from_betas, rescale_alphas_cumprod_zero_terminal_snr
from ..schedules.snr_zero import TERMINALS, clamp_fits
from .errors import node_error, require_model
from .host_sampling import (
    EPSILON,
    V_PREDICTION,
    describe_sampling,
    has_standard_input,
    is_flow,
    prediction_class,
    prediction_kind,
    standard_prediction_class,
)
from .model_detection import AUTO, Detection, inherited, install, make_auto_sampling
from .patch_report import UI_KEY, describe, detection_notes
from .prediction_check import executing_node
from .schedulers import carry_latent_size
from .schema_extras import search_aliases
from .validation import SchemaCheckedNode, check_arguments
from .zsnr_sampling import ZSNRSamplingMixin, install_first_step_wrapper, make_sampling

LOG = logging.getLogger("zsnr")
PREDICTIONS = (V_PREDICTION, EPSILON)
# "auto" (issue #25, nodes/model_detection.py) is appended, so every earlier value keeps its place
PREDICTION_OPTIONS = (*PREDICTIONS, AUTO)
TERMINAL_OPTIONS = (*TERMINALS, AUTO)


class FlowModel(Exception):
    """The model is flow matching (CONST): it already ends at SNR 0."""


def _declared_alphas_cumprod(patcher) -> torch.Tensor | None:
    """float64 alphā of the schedule the checkpoint declares (model_config.sampling_settings)."""
    config = getattr(patcher.model, "model_config", None)
    settings = getattr(config, "sampling_settings", None) or {}
    try:
        betas = make_beta_schedule(settings.get("beta_schedule", "linear"), settings.get("timesteps", 1000),
                                   linear_start=settings.get("linear_start", 0.00085),
                                   linear_end=settings.get("linear_end", 0.012))
    except Exception:  # an exotic schedule name: fall back to the sampling table itself
        return None
    return alphas_cumprod_from_betas(torch.as_tensor(betas, dtype=torch.float64))


def model_schedule(node_id: str, patcher) -> tuple[torch.Tensor, str | None, type]:
    """(base alphā float64, current terminal mode, host prediction class) of a discrete model.

    Raises FlowModel for flow models and a clear ValueError for families without a discrete
    schedule or with a prediction class whose x0 formula we do not know (host_sampling). The base
    schedule is the declared one when it reproduces the model's sigma table (also under the host's
    own zsnr rescale); otherwise the table itself (another node patched it).
    """
    sampling = require_model(node_id, "model", patcher).get_model_object("model_sampling")
    if isinstance(sampling, ZSNRSamplingMixin):
        return sampling.zsnr_base_alphas_cumprod, sampling.zsnr_terminal, sampling.zsnr_prediction_class
    kind = describe_sampling(sampling)
    if is_flow(sampling):
        raise FlowModel(kind)
    discrete = isinstance(sampling, comfy.model_sampling.ModelSamplingDiscrete) and not isinstance(
        sampling, comfy.model_sampling.ModelSamplingDiscreteEDM)
    prediction = prediction_class(sampling)
    if not discrete or prediction_kind(prediction) not in PREDICTIONS:
        raise node_error(node_id, "model", f"a model with {kind} sampling",
                         "a discrete-schedule epsilon or v-prediction model (SD 1.x/2.x/XL family, "
                         "CogVideoX); continuous-sigma (EDM) and x0 models have no training schedule to "
                         "rescale, and a prediction class whose x0 formula zsnr does not know cannot be "
                         "given an exact SNR-0 step")
    table = sampling.sigmas.detach().to(torch.float64).cpu()
    from_table = 1.0 / (1.0 + table**2)
    declared = _declared_alphas_cumprod(patcher)
    if declared is not None and len(declared) == len(table):
        host_zsnr = bool(getattr(sampling, "zsnr", False))
        candidate = rescale_alphas_cumprod_zero_terminal_snr(declared) if host_zsnr else declared
        compare = slice(0, -1) if host_zsnr else slice(None)  # the host clamps its last entry
        if torch.allclose(candidate[compare], from_table[compare], rtol=1e-4, atol=1e-9):
            return declared, ("clamp_comfy" if host_zsnr else None), prediction
    return from_table, None, prediction


def declared_class(node_id: str, own_class: type, prediction: str) -> type:
    """The prediction class for a declared kind: the model's own class when it already predicts
    that (CogVideoX's V_PREDICTION_DDPM stays itself), else the host's plain class, which is only
    a drop-in for a class that scales its input the standard way."""
    if prediction_kind(own_class) == prediction:
        return own_class
    if not has_standard_input(own_class):
        raise node_error(node_id, "prediction", prediction,
                         f"{prediction_kind(own_class)}: this model's {own_class.__name__} sampling feeds the "
                         "network a differently scaled input, so its prediction type cannot be swapped")
    return standard_prediction_class(prediction)


def _patched(node_class: str, patcher, base: torch.Tensor, terminal: str | None, prediction, notes=(),
             detection: Detection | None = None) -> io.NodeOutput:
    """The patched clone, and the report of what changed on the node and in the log. With a
    `detection`, the sampling object decides what is pending from the network (model_detection)."""
    source = (node_class, executing_node()[1])
    if detection is not None:
        detection.source = source
        sampling = make_auto_sampling(base, terminal, prediction, detection)
    else:
        sampling = make_sampling(base, terminal, prediction)
    carry_latent_size(patcher.get_model_object("model_sampling"), sampling)  # ZSNRSamplingResolution's size
    clone = patcher.clone()
    clone.add_object_patch("model_sampling", sampling)
    install(clone, sampling)  # before the first-step wrapper: it must run outside it
    install_first_step_wrapper(clone, sampling, source)
    notes = (*notes, *detection_notes(detection))
    report = describe(node_class, patcher, patcher.get_model_object("model_sampling"), sampling, notes)
    return io.NodeOutput(clone, ui={UI_KEY: [report]})


def _detection(patcher, prediction_auto: bool, terminal_auto: bool, keys_prediction: str,
               keys_zero_snr: bool, terminal_set: bool) -> Detection | None:
    """What the new patch still has to detect: its own auto inputs, and what a zsnr node upstream
    left pending (unless this node sets it)."""
    upstream = inherited(patcher)
    prediction_pending = prediction_auto or (upstream is not None and upstream.prediction_pending)
    terminal_pending = terminal_auto or (upstream is not None and upstream.terminal_pending and not terminal_set)
    if not (prediction_pending or terminal_pending):
        return None
    if upstream is not None:  # what the checkpoint declared, not what the upstream patch assumes meanwhile
        keys_prediction = upstream.keys_prediction if upstream.prediction_pending else keys_prediction
        keys_zero_snr = upstream.keys_zero_snr if upstream.terminal_pending else keys_zero_snr
    return Detection(prediction_pending, terminal_pending, keys_prediction, keys_zero_snr, ("", None))


class ZeroTerminalSNR(SchemaCheckedNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="ZeroTerminalSNR",
            display_name="Zero Terminal SNR (zsnr)",
            category="model/patch",
            **search_aliases("ztsnr", "zero terminal snr", "zsnr", "terminal snr", "rescale noise schedule"),
            description="Rescale the model's own noise schedule so the last timestep has zero SNR "
                        "(Lin et al. 2023, Algorithm 1). Use with v-prediction checkpoints.",
            inputs=[
                io.Model.Input("model", tooltip="A discrete-schedule model (SD 1.x/2.x/XL family)."),
                io.Combo.Input("terminal", options=list(TERMINAL_OPTIONS), default="exact",
                               tooltip="exact: alphā_T = 0 and an exact first step from SNR 0 with every "
                               "sampler; clamp_comfy: alphā_T = 4.9e-8 like ComfyUI's zsnr option; "
                               "clamp_diffusers: alphā_T = 2^-24 like diffusers' Euler/DPM/UniPC; auto: "
                               "exact if the network was trained for zero terminal SNR, unchanged if it was "
                               "trained on the declared schedule, decided by one probe evaluation at the "
                               "first sampling (the checkpoint's keys when it cannot tell)."),
            ],
            outputs=[io.Model.Output(tooltip="A patched clone whose last timestep has SNR 0; sample it "
                                             "with trailing spacing.")],
        )

    @classmethod
    def execute(cls, model, terminal="exact") -> io.NodeOutput:
        check_arguments(cls, model=model, terminal=terminal)
        try:
            base, current, prediction = model_schedule("ZeroTerminalSNR", model)
        except FlowModel as flow:
            report = describe("ZeroTerminalSNR", model, model.get_model_object("model_sampling"), None,
                              (f"a flow-matching model ({flow}) already ends at SNR 0: returned unchanged",))
            return io.NodeOutput(model, ui={UI_KEY: [report]})
        # a user-chosen clamp must fit; a clamp the host already applied (VPredictionAdapter keeps it) is the host's
        rescaled = rescale_alphas_cumprod_zero_terminal_snr(base)
        if terminal != AUTO and not clamp_fits(rescaled, terminal):
            raise node_error("ZeroTerminalSNR", "terminal", terminal,
                             f"exact for this model: after Algorithm 1 its alphā at T-2 is {float(rescaled[-2]):.3g}, "
                             f"already below the {terminal} value {TERMINALS[terminal]:.3g}, so the clamped sigma "
                             "table would stop increasing")
        keys_zero_snr = current is not None
        if terminal == AUTO:
            upstream = inherited(model)
            if prediction_kind(prediction) == EPSILON and upstream is None:
                note = ("terminal auto: an epsilon-prediction model cannot be sampled from SNR 0 (paper §6: epsilon "
                        "carries no image there): returned unchanged. If the checkpoint is a v-prediction fine-tune, "
                        "add VPredictionAdapter (prediction = v_prediction or auto) before this node.")
                LOG.warning("zsnr: ZeroTerminalSNR: %s", note)
                report = describe("ZeroTerminalSNR", model, model.get_model_object("model_sampling"), None, (note,))
                return io.NodeOutput(model, ui={UI_KEY: [report]})
        notes = ()
        if prediction_kind(prediction) == EPSILON and terminal != AUTO:
            notes = ("warning: an epsilon-prediction model: at SNR 0 epsilon carries no information about the "
                     "image (paper §6), so the first step cannot be right. If the checkpoint is a v-prediction "
                     "fine-tune, add VPredictionAdapter (prediction = v_prediction).",)
            LOG.warning("zsnr: ZeroTerminalSNR: %s", notes[0])
        detection = _detection(model, False, terminal == AUTO, prediction_kind(prediction), keys_zero_snr, True)
        return _patched("ZeroTerminalSNR", model, base, "exact" if terminal == AUTO else terminal, prediction, notes,
                        detection)


class VPredictionAdapter(SchemaCheckedNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="VPredictionAdapter",
            display_name="V-Prediction Adapter (zsnr)",
            category="model/patch",
            **search_aliases("vpred", "v-pred", "v-prediction", "v prediction", "v_prediction", "prediction type", "epsilon"),
            description="Declare the prediction type of a discrete model, keeping any zero-terminal-SNR "
                        "rescale (unlike ModelSamplingDiscrete). At SNR 0 a v model's x0 is exactly -v.",
            inputs=[
                io.Model.Input("model", tooltip="A discrete-schedule model (SD 1.x/2.x/XL family)."),
                io.Combo.Input("prediction", options=list(PREDICTION_OPTIONS), default="v_prediction",
                               tooltip="What the checkpoint predicts: v_prediction (SD 2.x-v, NoobAI-XL "
                               "v-pred, zsnr fine-tunes) or epsilon; auto: decided from the network's own "
                               "first output (one probe evaluation per model when sampling starts below the "
                               "top, e.g. img2img), the checkpoint's keys when it cannot tell."),
            ],
            outputs=[io.Model.Output(tooltip="A patched clone with the declared prediction over the same "
                                             "(possibly rescaled) schedule.")],
        )

    @classmethod
    def execute(cls, model, prediction="v_prediction") -> io.NodeOutput:
        check_arguments(cls, model=model, prediction=prediction)
        try:
            base, terminal, own_class = model_schedule("VPredictionAdapter", model)
        except FlowModel as flow:
            raise node_error("VPredictionAdapter", "model", f"a {flow} flow-matching model",
                             "a discrete-schedule model; flow models predict a velocity, not v or epsilon") from None
        if prediction == AUTO:  # start from what the host reads from the keys; the network decides later
            detection = _detection(model, True, False, prediction_kind(own_class), terminal is not None, False)
            return _patched("VPredictionAdapter", model, base, terminal, own_class, (), detection)
        detection = _detection(model, False, False, prediction, terminal is not None, False)
        if detection is not None:
            detection.prediction_pending = False  # declared here: only a pending terminal is carried
        return _patched("VPredictionAdapter", model, base, terminal,
                        declared_class("VPredictionAdapter", own_class, prediction), (), detection)


NODES = [ZeroTerminalSNR, VPredictionAdapter]
