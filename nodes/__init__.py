"""ComfyUI adapters: one module per node family, each exporting NODES."""
from __future__ import annotations

from . import (
    guidance_interval,
    reference_model,
    rescale_cfg,
    sampling_resolution,
    schedule_plot,
    schedulers,
    trained_model,
    zero_snr,
)

NODE_MODULES = (reference_model, rescale_cfg, guidance_interval, schedulers, zero_snr, sampling_resolution, schedule_plot, trained_model)
NODES = [node for module in NODE_MODULES for node in module.NODES]
