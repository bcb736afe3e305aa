"""The prediction check at the first step, host side: who declared the prediction, and telling the
user (log, and a toast plus a message on that node through the host's server-to-client messages).

The statistic and its threshold are derived in samplers/prediction_check.py. The check rides on
the model calls the sampling makes anyway (ZSNRSamplingMixin.calculate_denoised, armed once per
sampling by the SAMPLER_SAMPLE wrapper of nodes/zsnr_sampling.py), never changes an output, and
warns at most once per model per prompt. It sees only models patched by ZeroTerminalSNR or
VPredictionAdapter, whose sampling object is the pack's.
"""
from __future__ import annotations

import collections
import logging
import sys

from ..samplers.prediction_check import EPSILON, Verdict

LOG = logging.getLogger("zsnr")
EVENT = "zsnr.prediction_mismatch"
# Every judgement made in this process, by (declared, looks_like): read by the counting test and
# benchmark (tests/host/test_prediction_check_host.py), shown nowhere else.
VERDICT_COUNTS: collections.Counter = collections.Counter()


def executing_node() -> tuple[str | None, str | None]:
    """(prompt id, node id) of the node the host is executing now, or (None, None) in-process."""
    utils = sys.modules.get("comfy_execution.utils")
    context = utils.get_executing_context() if utils and hasattr(utils, "get_executing_context") else None
    return (context.prompt_id, context.node_id) if context else (None, None)


def advice(verdict: Verdict) -> str:
    """What the user should do: the node to use, with the right choice."""
    if verdict.looks_like == EPSILON:
        return ("the checkpoint looks like an epsilon model: use VPredictionAdapter with prediction = epsilon "
                "(and no exact ZeroTerminalSNR: at SNR 0 epsilon carries no image, paper §6)")
    return "the checkpoint looks like a v-prediction model: use VPredictionAdapter with prediction = v_prediction"


def report(sampling, verdict: Verdict) -> None:
    """Count a verdict; on a mismatch warn once per model per prompt, in the log and in the UI."""
    VERDICT_COUNTS[(verdict.declared, verdict.looks_like)] += 1
    sampling.zsnr_last_verdict = verdict
    if not verdict.mismatch:
        return
    prompt_id, _ = executing_node()
    if getattr(sampling, "zsnr_warned_prompt", object()) == prompt_id:
        return
    sampling.zsnr_warned_prompt = prompt_id
    node_class, node_id = getattr(sampling, "zsnr_source", (None, None))
    declared_by = f"{node_class} (node {node_id})" if node_id is not None else (node_class or "zsnr")
    message = (f"{declared_by} declares {verdict.declared}, but the model's first output at alphā = "
               f"{verdict.alphas_cumprod:.3g} has noise coefficient c = {verdict.coefficient:.2f} (epsilon ≈ 1, "
               f"v ≈ 0; threshold 0.5): {advice(verdict)}. The images of this run will be grey, "
               "noisy or burnt.")
    LOG.warning("zsnr: prediction check: %s", message)
    notify({"node_id": node_id, "node_class": node_class, "declared": verdict.declared,
             "looks_like": verdict.looks_like, "coefficient": verdict.coefficient, "message": message})


def notify(payload: dict) -> None:
    """Send to the client that queued the prompt; nothing without a running server (as routes.py)."""
    server_module = sys.modules.get("server")
    prompt_server = getattr(getattr(server_module, "PromptServer", None), "instance", None)
    if prompt_server is not None:
        prompt_server.send_sync(EVENT, payload, getattr(prompt_server, "client_id", None))
