"""What ZeroTerminalSNR and VPredictionAdapter found and did, in words: shown on the node after a
run (a `zsnr_report` UI output, drawn by web/js/zsnr_report.js) and written to the log.

The facts come from the sampling objects before and after the patch, so the report says what the
host will really sample: the model family (the host's model config class), the prediction class,
the schedule the checkpoint declares (its sampling_settings), which rescale was already applied
(the host's own zsnr option for checkpoints with `v_pred` + `ztsnr` keys), the terminal SNR and sigma_max before and after.
"""
from __future__ import annotations

import logging
import math

from ..schedules.conversions import alphas_cumprod_from_sigma, snr_from_alphas_cumprod
from .host_sampling import describe_sampling, prediction_class, prediction_kind

LOG = logging.getLogger("zsnr")
UI_KEY = "zsnr_report"
# ComfyUI names SD's scaled_linear "linear" and DDPM's linear "sqrt_linear" (comfy/model_sampling.py)
_SCHEDULE_NAMES = {"linear": "scaled_linear (SD)", "sqrt_linear": "linear (DDPM)"}


def family(patcher) -> str:
    config = getattr(patcher.model, "model_config", None)
    return type(config).__name__ if config is not None else type(patcher.model).__name__


def declared_schedule(patcher) -> str:
    settings = getattr(getattr(patcher.model, "model_config", None), "sampling_settings", None) or {}
    name = settings.get("beta_schedule", "linear")
    text = _SCHEDULE_NAMES.get(name, name)
    if name in _SCHEDULE_NAMES:
        text += f" {settings.get('linear_start', 0.00085):g} → {settings.get('linear_end', 0.012):g}"
    return f"{text}, {settings.get('timesteps', 1000)} timesteps"


def rescale_applied(sampling) -> str:
    """Which zero-terminal-SNR rescale the sampling already has: the pack's, the host's own zsnr
    option (ModelSamplingDiscrete(zsnr=True), or a checkpoint's `ztsnr` key), or none."""
    if hasattr(sampling, "zsnr_terminal"):  # the pack's sampling (nodes/zsnr_sampling.py)
        return f"zsnr ({sampling.zsnr_terminal})" if sampling.zsnr_terminal else "none"
    return "the host's zsnr option (alphā_T clamped to 4.9e-8)" if getattr(sampling, "zsnr", False) else "none"


def terminal(sampling) -> tuple[float, float, float | None]:
    """(terminal SNR, sigma_max, the SNR-0 sentinel or None) the sampling really uses: an exact
    model is SNR 0 and sigma inf, its table holding the finite sentinel instead."""
    sentinel = getattr(sampling, "zsnr_terminal_sigma", None)
    if sentinel is not None:
        return 0.0, math.inf, sentinel
    sigma_max = float(sampling.sigma_max)
    return float(snr_from_alphas_cumprod(alphas_cumprod_from_sigma(sigma_max))), sigma_max, None


def _snr(value: float) -> str:
    return "exactly 0" if value == 0 else f"{value:.3g}"


def _sigma(value: float, sentinel: float | None) -> str:
    return f"∞ (the host's table holds the finite sentinel {sentinel:.2f})" if math.isinf(value) else f"{value:.4g}"


def describe(node_class: str, patcher, before, after, notes: tuple[str, ...] = ()) -> str:
    """The report of one patch: `before`/`after` are the model_sampling objects (after None: the
    model was returned unchanged)."""
    kind_before = prediction_kind(prediction_class(before)) or "unknown"
    snr_before, sigma_before, sentinel_before = terminal(before)
    lines = [f"{node_class}: {family(patcher)} model, sampling {describe_sampling(before)} ({kind_before})",
             f"declared schedule: {declared_schedule(patcher)}",
             f"zero-SNR rescale already applied: {rescale_applied(before)}"]
    if after is None:
        lines.append(f"terminal SNR {_snr(snr_before)}, sigma_max {_sigma(sigma_before, sentinel_before)}: unchanged")
    else:
        snr_after, sigma_after, sentinel_after = terminal(after)
        kind_after = prediction_kind(prediction_class(after)) or "unknown"
        lines += [f"prediction: {kind_before} → {kind_after}",
                  f"terminal SNR: {_snr(snr_before)} → {_snr(snr_after)}",
                  f"sigma_max: {_sigma(sigma_before, sentinel_before)} → {_sigma(sigma_after, sentinel_after)}"]
        if sentinel_after is not None:
            lines.append("first step from SNR 0: exact, with every sampler")
    lines += list(notes)
    text = "\n".join(lines)
    LOG.info("zsnr: %s", text.replace("\n", "; "))
    return text


def detection_notes(detection) -> tuple[str, ...]:
    """The report lines of what a patch still detects from the network (nodes/model_detection.py).
    The verdicts come at the first sampling: in the log, and on this node when they contradict the
    checkpoint's keys or cannot tell."""
    if detection is None:
        return ()
    notes = []
    if detection.prediction_pending:
        notes.append(f"prediction: auto: decided from the network at the first sampling (its first model call when "
                     f"that starts near the top, no extra call; else one probe evaluation); the checkpoint's keys "
                     f"say {detection.keys_prediction}, kept if it cannot tell")
    if detection.terminal_pending:
        keys = "zero terminal SNR (ztsnr)" if detection.keys_zero_snr else "the declared schedule"
        notes.append(f"terminal: auto: exact until one probe evaluation at the first sampling tells zero-terminal-SNR "
                     f"training from training on the declared schedule; the checkpoint's keys say {keys}, kept if "
                     "it cannot tell")
    notes.append("verdicts: in the log, and here as a warning when they contradict the keys or cannot tell "
                 "(docs/detection.md)")
    return tuple(notes)
