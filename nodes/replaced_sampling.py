"""When a later node replaces the ModelSampling ZeroTerminalSNR / VPredictionAdapter put on a model:
say so once per prompt, in the log and to the client, instead of sampling silently without it.

ZeroTerminalSNR and VPredictionAdapter install the SAMPLER_SAMPLE wrapper (nodes/zsnr_sampling.py,
exact_first_step) together with their sampling object. A node after them that calls
`add_object_patch("model_sampling", ...)` keeps the wrapper (ModelPatcher.clone copies wrappers) but
drops our object: AnimateDiff-Evolved's "Use Evolved Sampling" (animatediff/nodes_gen2.py, a
`sqrt_linear` ModelSampling built by animatediff/utils_model.py), the host's ModelSamplingDiscrete
node (upstream comfy_extras/nodes_model_advanced.py). The host then samples that object's schedule:
no exact first step from SNR 0, no prediction check, and the terminal SNR of its table.
exact_first_step sees the foreign object and calls report_replaced_sampling.
"""
from __future__ import annotations

import logging
import sys

from .host_sampling import describe_sampling, prediction_class, prediction_kind
from .patch_report import terminal
from .prediction_check import executing_node

LOG = logging.getLogger("zsnr")
EVENT = "zsnr.sampling_replaced"
# Set on the replacing object: the prompt it was reported for (one report per object per prompt).
WARNED_ATTRIBUTE = "zsnr_replaced_warned_prompt"


def describe_replacement(model_sampling) -> str:
    """The message: what replaced ours, what the host samples now, what is lost, what to do."""
    kind = prediction_kind(prediction_class(model_sampling)) or "unknown prediction"
    cls = type(model_sampling)
    try:
        snr, sigma_max, _ = terminal(model_sampling)
        schedule = f"terminal SNR {snr:.3g}, sigma_max {sigma_max:.4g}"
    except (AttributeError, TypeError, ValueError):  # a sampling without a discrete sigma_max
        schedule = "its own schedule"
    return (f"a node after ZeroTerminalSNR / VPredictionAdapter replaced the model's ModelSampling with "
            f"{cls.__module__}.{cls.__qualname__} ({describe_sampling(model_sampling)}, {kind}; {schedule}). "
            "zsnr's sampling is gone for this run: no exact first step from SNR 0, no zero-terminal-SNR "
            "rescale unless the new object has its own, no prediction check. Put ZeroTerminalSNR (and "
            "VPredictionAdapter) after the node that replaces the ModelSampling (for AnimateDiff-Evolved: "
            "after Use Evolved Sampling, or its beta_schedule 'use existing').")


def report_replaced_sampling(model_sampling) -> str | None:
    """Warn that `model_sampling` (the object the host samples with) is not zsnr's although our
    wrapper runs: once per prompt and object, in the log and as a `zsnr.sampling_replaced` message
    to the client that queued the prompt, naming the executing (sampler) node. Returns the message,
    or None when this object was already reported for this prompt."""
    prompt_id, node_id = executing_node()
    if getattr(model_sampling, WARNED_ATTRIBUTE, object()) == prompt_id:
        return None
    try:
        setattr(model_sampling, WARNED_ATTRIBUTE, prompt_id)
    except (AttributeError, TypeError):  # an object that takes no attributes: report every time
        pass
    message = describe_replacement(model_sampling)
    LOG.warning("zsnr: %s", message)
    _notify({"prompt_id": prompt_id, "node_id": node_id, "message": message,
             "replaced_by": describe_sampling(model_sampling)})
    return message


def _notify(payload: dict) -> None:
    """Send to the client that queued the prompt; nothing without a running server (as
    nodes/prediction_check.py does for its warning)."""
    server_module = sys.modules.get("server")
    prompt_server = getattr(getattr(server_module, "PromptServer", None), "instance", None)
    if prompt_server is not None:
        prompt_server.send_sync(EVENT, payload, getattr(prompt_server, "client_id", None))
