"""Timestep-spacing schedulers (paper Table 2): a SIGMAS node and entries in the host's list.

The latent size reaches a spacing (logsnr_resolution) in two ways: the SIGMAS node's optional
`latent` input, and the size ZSNRSamplingResolution (nodes/sampling_resolution.py) records on the
model's sampling object, as the host's ModelSamplingFlux records width and height (upstream
comfy_extras/nodes_model_advanced.py). The host's scheduler handlers get (model_sampling, steps)
alone, so the recorded size is all the host-list entries can see; without it they space for the
reference size (schedules/logsnr_spacing.py, REFERENCE_LATENT_SIZE).
"""
from __future__ import annotations

import logging
import sys
from functools import partial

import comfy.model_sampling
import comfy.samplers
import torch
from comfy_api.latest import io

from ..schedules.spacing import SPACINGS, spacing_sigmas
from .errors import node_error, require_model
from .host_sampling import describe_sampling, is_flow
from .schema_extras import search_aliases
from .validation import SchemaCheckedNode, check_arguments

LOG = logging.getLogger("zsnr")
# sgm_uniform is the host's own name; ours agrees with it, so only the others are registered.
HOST_LIST_SPACINGS = tuple(s for s in SPACINGS if s != "sgm_uniform")
# The (height, width) latent size ZSNRSamplingResolution records on a model_sampling object; read
# by recorded_latent_size, kept across our own re-patches by carry_latent_size.
LATENT_SIZE_ATTRIBUTE = "zsnr_latent_size"


def model_sigma_table(model, node_id: str = "TimestepSpacingScheduler"):
    """The model's own discrete sigma table (one entry per training timestep), as the host holds it.

    Every host sampling class has a `sigmas` buffer, flow and continuous-EDM ones too (upstream
    comfy/model_sampling.py keeps one "for compatibility with some schedulers"), so the class is
    what tells a discrete schedule: a ModelSamplingDiscrete (ours included) not predicting a flow.
    """
    model_sampling = require_model(node_id, "model", model).get_model_object("model_sampling")
    table = getattr(model_sampling, "sigmas", None)
    discrete = isinstance(model_sampling, comfy.model_sampling.ModelSamplingDiscrete) and not is_flow(model_sampling)
    if not discrete or table is None or table.ndim != 1 or len(table) < 2:
        raise node_error(
            node_id, "model", f"a model with {describe_sampling(model_sampling)} sampling",
            "a model with a discrete schedule (SD 1.x/2.x/XL-style ModelSamplingDiscrete); "
            "continuous-sigma and flow models have no training timesteps to space",
        )
    return table


def recorded_latent_size(model_sampling) -> tuple[int, int] | None:
    """The (height, width) ZSNRSamplingResolution recorded on this sampling object, or None."""
    return getattr(model_sampling, LATENT_SIZE_ATTRIBUTE, None)


def record_latent_size(model_sampling, size: tuple[int, int]) -> None:
    """Record (height, width) on a sampling object: the one writer of LATENT_SIZE_ATTRIBUTE."""
    setattr(model_sampling, LATENT_SIZE_ATTRIBUTE, size)


def carry_latent_size(source, target) -> None:
    """Keep a recorded size on a sampling object built from another (ZeroTerminalSNR and
    VPredictionAdapter replace the model's sampling object; the host's ModelSampling* nodes do not
    call this, so after them the size is gone)."""
    size = recorded_latent_size(source)
    if size is not None:
        record_latent_size(target, size)


def latent_size(latent) -> tuple[int, int] | None:
    """(height, width) of a LATENT's samples (the last two dimensions, also for video latents'
    [B, C, T, H, W]), or None when the input is not connected."""
    if latent is None:
        return None
    samples = latent.get("samples") if isinstance(latent, dict) else None
    if not isinstance(samples, torch.Tensor) or samples.ndim < 3 or samples.shape[-1] < 1 or samples.shape[-2] < 1:
        shown = type(latent).__name__ if samples is None else f"samples of shape {list(getattr(samples, 'shape', []))}"
        raise node_error("TimestepSpacingScheduler", "latent", shown,
                         "a LATENT whose samples have spatial dimensions [..., height, width]")
    return int(samples.shape[-2]), int(samples.shape[-1])


class TimestepSpacingScheduler(SchemaCheckedNode):
    """SIGMAS at the training timesteps a spacing rule picks. logsnr_resolution's latent size: the
    `latent` input when connected (it is the latent sampled), else the size ZSNRSamplingResolution
    recorded on the model, else the reference size."""

    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="TimestepSpacingScheduler",
            display_name="Timestep Spacing Scheduler (zsnr)",
            category="model/sampling/schedulers",
            **search_aliases("trailing", "timestep spacing", "leading", "linspace", "logsnr"),
            description=(
                "Sigmas at exact training timesteps chosen by a spacing rule (Lin et al. 2023, Table 2). "
                "trailing always includes the last timestep, so sampling starts at the model's terminal "
                "SNR; leading (DDIM/PNDM default) and linspace do not."
            ),
            inputs=[
                io.Model.Input("model", tooltip="The model whose own discrete schedule is spaced."),
                io.Combo.Input(
                    "spacing", options=list(SPACINGS), default="trailing",
                    tooltip="trailing: t = T-1, T-1-T/S, … (paper's recommendation); leading: 0, T/S, … "
                    "reversed (DDIM default); linspace: round(linspace(0, T-1, S)); sgm_uniform: "
                    "fractional, uniform in t from T-1 (the host's sgm_uniform); logsnr_uniform: T-1, then "
                    "uniform in log-SNR; logsnr_resolution: logsnr_uniform with its low-SNR end moved by "
                    "log(latent pixels / 64x64), for the `latent` input's size (unconnected: the size "
                    "Sampling Resolution (zsnr) recorded on the model).",
                ),
                io.Int.Input("steps", default=20, min=1, max=10000,
                             tooltip="Number of sampling steps S (at most the model's T training timesteps)."),
                io.Float.Input("denoise", default=1.0, min=0.0, max=1.0, step=0.01,
                               tooltip="As BasicScheduler: below 1, the last `steps` of int(steps/denoise) steps."),
                io.Int.Input("steps_offset", default=0, min=0, max=1000,
                             tooltip="Added to leading timesteps (diffusers' steps_offset; SD configs use 1)."),
                io.Latent.Input("latent", optional=True,
                                tooltip="The latent to be sampled (e.g. EmptyLatentImage's): its height x width "
                                        "sets logsnr_resolution's shift. Unconnected: the size Sampling "
                                        "Resolution (zsnr) recorded on the model, else the 64x64 reference "
                                        "size. The other spacings ignore it."),
            ],
            outputs=[io.Sigmas.Output(tooltip="steps+1 sigmas, decreasing, ending at 0: connect to the sigmas "
                                              "input of SamplerCustom / SamplerCustomAdvanced.")],
        )

    @classmethod
    def execute(cls, model, spacing, steps, denoise, steps_offset=0, latent=None) -> io.NodeOutput:
        check_arguments(cls, model=model, spacing=spacing, steps=steps, denoise=denoise, steps_offset=steps_offset,
                        latent=latent)
        table = model_sigma_table(model)
        # a connected latent is the size sampled; else the model's recorded one (or None: the reference)
        size = latent_size(latent)
        if size is None:
            size = recorded_latent_size(model.get_model_object("model_sampling"))
        try:
            sigmas = spacing_sigmas(spacing, steps, table, denoise=denoise, steps_offset=steps_offset,
                                    latent_size=size)
        except ValueError as error:
            raise ValueError(f"TimestepSpacingScheduler: {error}") from error
        return io.NodeOutput(sigmas)


def _host_scheduler(spacing: str, model_sampling, steps: int):
    """A host-list scheduler: the host passes no latent, so logsnr_resolution spaces for the size
    recorded on model_sampling (ZSNRSamplingResolution), or for the reference size without one."""
    try:
        return spacing_sigmas(spacing, steps, model_sampling.sigmas, latent_size=recorded_latent_size(model_sampling))
    except ValueError as error:  # raised inside KSampler/BasicScheduler: say whose scheduler it is
        raise ValueError(f"scheduler '{spacing}' (zsnr TimestepSpacingScheduler rule): {error}") from error


def register_host_schedulers() -> list[str]:
    """Add our spacings to the host's scheduler registry (KSampler and BasicScheduler dropdowns).

    Uses comfy.samplers.SCHEDULER_HANDLERS and appends to SCHEDULER_NAMES (the list object KSampler
    offers). A name someone else already registered is left alone and logged.
    """
    registered = []
    for spacing in HOST_LIST_SPACINGS:
        existing = comfy.samplers.SCHEDULER_HANDLERS.get(spacing)
        if existing is not None and not getattr(existing.handler, "zsnr_spacing", None):
            LOG.warning("zsnr: a scheduler named %r is already registered by %r; leaving it in place",
                        spacing, getattr(existing.handler, "__module__", existing.handler))
            continue
        handler = partial(_host_scheduler, spacing)
        handler.zsnr_spacing = spacing
        comfy.samplers.SCHEDULER_HANDLERS[spacing] = comfy.samplers.SchedulerHandler(handler)
        if spacing not in comfy.samplers.SCHEDULER_NAMES:
            comfy.samplers.SCHEDULER_NAMES.append(spacing)
        registered.append(spacing)
    # Packs loaded after us copy a list that already holds our names: the host imports each pack and
    # awaits its comfy_entrypoint before it lists the next (upstream nodes.py, load_custom_node in
    # init_external_custom_nodes; the same in 0.3.75 and 0.33.0). Those loaded before us hold copies
    # made without them.
    extend_copied_scheduler_lists()
    return registered


def _host_builtin(handler) -> bool:
    function = handler.handler
    while isinstance(function, partial):
        function = function.func
    return getattr(function, "__module__", "").startswith("comfy.")


def extend_copied_scheduler_lists() -> list[str]:
    """Append our names to the scheduler lists other packs copied from the host before we registered.

    Impact Pack (modules/impact/core.py) and Inspire Pack (inspire/libs/common.py) build
    `SCHEDULERS = comfy.samplers.KSampler.SCHEDULERS + [...]` at import and offer that list object on
    every call of their INPUT_TYPES; the host validates a prompt against what INPUT_TYPES returns
    (upstream execution.py, validate_inputs). A list holding every built-in scheduler name is such a
    copy; extended in place, it offers ours without any change to the pack's code. Returns the
    "node.input" names extended; a copy held as a tuple cannot be extended and is logged.
    """
    host_nodes = sys.modules.get("nodes")
    ours = [name for name, h in comfy.samplers.SCHEDULER_HANDLERS.items() if getattr(h.handler, "zsnr_spacing", None)]
    builtin = {name for name, h in comfy.samplers.SCHEDULER_HANDLERS.items() if _host_builtin(h)}
    if host_nodes is None or not ours or not builtin:
        return []
    # by id, holding each object so that no id is reused for a temporary list while we walk
    extended, seen = [], {id(comfy.samplers.SCHEDULER_NAMES): comfy.samplers.SCHEDULER_NAMES}
    for node_name, node_class in list(getattr(host_nodes, "NODE_CLASS_MAPPINGS", {}).items()):
        try:
            spec = node_class.INPUT_TYPES()
        except Exception:  # noqa: BLE001 - another pack's INPUT_TYPES failing is the host's to report
            continue
        for section in ("required", "optional"):
            for input_name, entry in ((spec or {}).get(section) or {}).items():
                options = entry[0] if isinstance(entry, (tuple, list)) and entry else None
                if not isinstance(options, (list, tuple)) or id(options) in seen:
                    continue
                seen[id(options)] = options
                if not builtin.issubset(o for o in options if isinstance(o, str)):
                    continue
                missing = [name for name in ours if name not in options]
                if missing and isinstance(options, list):
                    options.extend(missing)
                    extended.append(f"{node_name}.{input_name}")
                elif missing:
                    LOG.warning("zsnr: %s.%s holds a copy of the scheduler list as a tuple; zsnr's schedulers "
                                "cannot be added to it", node_name, input_name)
    if extended:
        LOG.info("zsnr: added %s to the scheduler lists copied at import by %s", ", ".join(ours), ", ".join(extended))
    return extended


NODES = [TimestepSpacingScheduler]
