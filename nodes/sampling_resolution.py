"""ZSNRSamplingResolution: record the size to be sampled on the model, for the host's scheduler list.

The host calls a scheduler of its KSampler / BasicScheduler list with (model_sampling, steps) only
(upstream comfy/samplers.py, calculate_sigmas), so logsnr_resolution there cannot see the latent.
The host's own answer for size-dependent schedules is a model patch: ModelSamplingFlux takes width
and height and installs a sampling object built for them (upstream
comfy_extras/nodes_model_advanced.py). This node does the same for logsnr_resolution: it installs
a copy of the model's sampling object that carries the latent size (nodes/schedulers.py,
LATENT_SIZE_ATTRIBUTE, record_latent_size), which the host-list entries and TimestepSpacingScheduler read.
"""
from __future__ import annotations

import copy

from comfy_api.latest import io

from .schedulers import model_sigma_table, record_latent_size
from .schema_extras import search_aliases
from .validation import MAX_RESOLUTION, SchemaCheckedNode, check_arguments

NODE_ID = "ZSNRSamplingResolution"
# Pixels per latent position of the SD-family VAE (upstream nodes.py, EmptyLatentImage: height // 8);
# logsnr_resolution is a spacing for the SD family's schedule (schedules/logsnr_spacing.py).
VAE_FACTOR = 8


def sampling_with_latent_size(model_sampling, size: tuple[int, int]):
    """A copy of a sampling object that carries `size`. A deep copy, not a rebuild: the object's class
    may be one the host or ZeroTerminalSNR composed per model (upstream comfy/model_base.py,
    model_sampling(); nodes/zsnr_sampling.py, composed_sampling_class) with state no constructor
    rebuilds (our rescaled table and SNR-0 sentinel); deepcopy keeps the class and copies every
    tensor, so the copy computes what the original does and shares no mutable state with it."""
    recorded = copy.deepcopy(model_sampling)
    record_latent_size(recorded, size)
    return recorded


def _size_input(name: str) -> io.Int.Input:
    return io.Int.Input(name, default=1024, min=64, max=MAX_RESOLUTION, step=8,
                        tooltip=f"The {name} of the image you sample, in pixels, as EmptyLatentImage's {name}: "
                                f"the latent's {name} is {name}/8, the SD-family VAE's factor "
                                "(logsnr_resolution is a spacing for the SD family's schedule).")


class ZSNRSamplingResolution(SchemaCheckedNode):
    """Clone the model with a sampling object that records the latent size (height//8, width//8)."""

    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id=NODE_ID,
            display_name="Sampling Resolution (zsnr)",
            category="model/patch",
            **search_aliases("resolution", "logsnr_resolution", "image size"),
            description=(
                "Record the image size you sample on the model, so the KSampler / BasicScheduler "
                "scheduler logsnr_resolution (and Timestep Spacing Scheduler without a latent) spaces for "
                "it, as ModelSamplingFlux does for Flux. Put it last in the model chain: Zero Terminal SNR "
                "and V-Prediction Adapter after it keep the size, the host's ModelSamplingDiscrete (or any "
                "ModelSampling* node) after it drops it. The other spacings ignore the size."
            ),
            inputs=[
                io.Model.Input("model", tooltip="A discrete-schedule model (SD 1.x/2.x/XL family)."),
                _size_input("width"),
                _size_input("height"),
            ],
            outputs=[io.Model.Output(tooltip="A patched clone whose sampling object records the latent size; "
                                             "sampling itself is unchanged.")],
        )

    @classmethod
    def execute(cls, model, width=1024, height=1024) -> io.NodeOutput:
        check_arguments(cls, model=model, width=width, height=height)
        model_sigma_table(model, NODE_ID)  # only a discrete schedule has timesteps to space
        size = (height // VAE_FACTOR, width // VAE_FACTOR)
        clone = model.clone()
        clone.add_object_patch("model_sampling", sampling_with_latent_size(model.get_model_object("model_sampling"), size))
        return io.NodeOutput(clone)


NODES = [ZSNRSamplingResolution]
