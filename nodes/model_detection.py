"""Prediction type and zero-terminal-SNR training decided from the network itself (issue #25):
the host side of VPredictionAdapter(prediction = auto) and ZeroTerminalSNR(terminal = auto).

The statistics and their derivations are samplers/prediction_check.py (epsilon or v, from the
output at the top of the schedule) and samplers/terminal_detect.py (zero terminal SNR or the
declared schedule, from the output for pure noise at 85% of the schedule); docs/detection.md has
the measured confusion matrix.

When the decisions are made, and what they cost:
- prediction, sampling from the top (ā <= 0.05): the first model call of the sampling, which
  the sampler makes anyway, is judged before its x0 is computed (AutoDetectMixin), and the
  sampling object takes the detected prediction class for that call and every later one;
- prediction, sampling from lower down (img2img, hires pass, detailer), and terminal always: one
  probe evaluation before the sampling starts (the SAMPLER_SAMPLE wrapper detect_before_sampling),
  on the sampling's own noise and positive conditioning, at the top and (for the terminal) at the
  probe timestep, in one batch. Decisions are cached on the patch's sampling object: once per
  model, not per sampling.
Until the terminal is decided the sampling object holds the exact zero-terminal-SNR table, so the
sigmas of the first sampling were computed on it; when the verdict is the declared schedule, those
sigmas are moved to the same timesteps of the declared table (terminal_detect.remap_sigmas).
Undecidable: the class and terminal the checkpoint declares (its keys, as the host read them) are
kept, and the report says so.

About 260 lines in one module: the sampling class, the wrapper, the probe and the messages share
one Detection state and are used nowhere apart.
"""
from __future__ import annotations

import collections
import logging
from dataclasses import dataclass, field

import comfy.model_sampling
import comfy.patcher_extension
import comfy.samplers
import torch

from ..samplers import terminal_detect
from ..samplers.prediction_check import UNDECIDED, Verdict, judge, judges
from ..schedules.conversions import alphas_cumprod_from_sigma
from ..schedules.snr_zero import is_snr_zero
from . import prediction_check
from .host_sampling import (
    EPSILON,
    V_PREDICTION,
    has_standard_input,
    prediction_kind,
    standard_prediction_class,
)
from .zsnr_sampling import ZSNRSamplingMixin

AUTO = "auto"
WRAPPER_KEY = "zsnr_detect_checkpoint"
LOG = logging.getLogger("zsnr")
# Probe evaluations made in this process, by reason: read by tests and benchmarks/detection_matrix.py.
PROBE_COUNTS: collections.Counter = collections.Counter()


@dataclass
class Detection:
    """What is still to decide on one patched model, what the checkpoint's keys say, and the verdicts."""
    prediction_pending: bool
    terminal_pending: bool
    keys_prediction: str  # the kind the host samples the checkpoint as (its keys, or a node upstream)
    keys_zero_snr: bool  # the host already applies its zsnr option (the checkpoint's ztsnr key)
    source: tuple[str, str | None]  # (node class, node id) for messages
    prediction: Verdict | None = None
    terminal: terminal_detect.TerminalVerdict | None = None
    lines: list[str] = field(default_factory=list)

    @property
    def pending(self) -> bool:
        return self.prediction_pending or self.terminal_pending


class AutoDetectMixin:
    """In front of ZSNRSamplingMixin: judges the sampling's first call before its x0 is computed,
    and hands the raw outputs of a probe to detect_before_sampling."""

    zsnr_detection: Detection | None = None
    zsnr_capture: list | None = None

    def calculate_denoised(self, sigma, model_output, model_input):
        if self.zsnr_capture is not None:
            self.zsnr_capture.append(model_output.detach())
        detection = self.zsnr_detection
        if detection is not None and detection.prediction_pending and self.zsnr_check_pending:
            top = top_alphas_cumprod(self, sigma)
            if judges(top):
                verdict = judge(detection.keys_prediction, model_output, self.calculate_input(sigma, model_input), top)
                decide_prediction(self, detection, verdict, "the sampling's first model call")
        return super().calculate_denoised(sigma, model_output, model_input)


_COMPOSED: dict[type, type] = {}


def auto_sampling_class(prediction_class: type) -> type:
    """As zsnr_sampling.composed_sampling_class, with AutoDetectMixin in front."""
    if prediction_class not in _COMPOSED:
        _COMPOSED[prediction_class] = type(
            f"ZSNRAutoSampling_{prediction_class.__name__}",
            (AutoDetectMixin, ZSNRSamplingMixin, comfy.model_sampling.ModelSamplingDiscrete, prediction_class), {})
    return _COMPOSED[prediction_class]


def make_auto_sampling(base: torch.Tensor, terminal: str | None, prediction_class: type, detection: Detection):
    sampling = auto_sampling_class(prediction_class)()
    sampling.zsnr_prediction_class = prediction_class
    sampling.zsnr_detection = detection
    return sampling.configure(base, terminal, prediction_kind(prediction_class))


def top_alphas_cumprod(sampling, sigma) -> float:
    top = torch.as_tensor(sigma).detach().reshape(-1).max().to("cpu", torch.float64)
    return 0.0 if is_snr_zero(top, sampling.zsnr_terminal_sigma) else float(alphas_cumprod_from_sigma(top))


def _say(detection: Detection, text: str, warn: bool = False) -> None:
    node_class, node_id = detection.source
    detection.lines.append(text)
    if not warn:
        LOG.info("zsnr: %s: %s", node_class, text)
        return
    LOG.warning("zsnr: %s: %s", node_class, text)
    prediction_check.notify({"node_id": node_id, "node_class": node_class, "message": f"{node_class}: {text}"})


def decide_prediction(sampling, detection: Detection, verdict: Verdict, where: str) -> None:
    """Take the detected prediction class (or keep the declared one when undecided) and say so."""
    detection.prediction_pending = False
    detection.prediction = verdict
    stats = f"noise coefficient c = {verdict.coefficient:.3f} at alphā = {verdict.alphas_cumprod:.3g}, from {where}"
    if verdict.looks_like == UNDECIDED:
        _say(detection, f"prediction: cannot tell ({verdict.reason}; {stats}); kept {detection.keys_prediction}, "
             "which the checkpoint declares", warn=True)
        return
    text = f"prediction: detected {verdict.looks_like} ({stats}, margin {verdict.margin:.2f})"
    if verdict.looks_like != detection.keys_prediction:
        own = sampling.zsnr_prediction_class
        if not has_standard_input(own):
            _say(detection, f"{text}, but this model's {own.__name__} sampling scales its input its own way, so the "
                 f"declared {detection.keys_prediction} is kept", warn=True)
            return
        new_class = standard_prediction_class(verdict.looks_like)
        sampling.__class__ = auto_sampling_class(new_class)
        sampling.zsnr_prediction_class, sampling.zsnr_prediction = new_class, verdict.looks_like
        _say(detection, f"{text}; the checkpoint's keys say {detection.keys_prediction}: they are wrong or missing "
             f"(sampled as {verdict.looks_like})", warn=True)
    else:
        _say(detection, f"{text}, as the checkpoint's keys say")


def decide_terminal(sampling, detection: Detection, verdict: terminal_detect.TerminalVerdict | None,
                    prediction: Verdict) -> str | None:
    """The terminal the sampling uses from now on ("exact" or None), with what was said; `prediction`
    is the probe's verdict at the top (the terminal is only told for a network that looks like v)."""
    detection.terminal_pending = False
    detection.terminal = verdict
    keys = ("zero terminal SNR (the host's zsnr option: a ztsnr key)" if detection.keys_zero_snr
            else "the declared schedule (no ztsnr key)")
    if prediction.looks_like == EPSILON and sampling.zsnr_prediction == EPSILON:
        _say(detection, "terminal: left unchanged: an epsilon-prediction model cannot be sampled from SNR 0 (paper §6: "
             "epsilon carries no image there); zero-terminal-SNR training is only told for v models", warn=True)
        return None
    if verdict is None or verdict.trained_for == terminal_detect.UNDECIDED:
        if verdict is not None:
            reason = verdict.reason
        elif prediction.looks_like == UNDECIDED:
            reason = "the prediction type cannot be told either"
        else:
            reason = f"the network looks like {prediction.looks_like} but is sampled as {sampling.zsnr_prediction}"
        chosen = "exact" if detection.keys_zero_snr and sampling.zsnr_prediction == V_PREDICTION else None
        _say(detection, f"terminal: cannot tell ({reason}); kept what the checkpoint declares, {keys}: "
             f"{'exact zero terminal SNR' if chosen else 'unchanged'}", warn=True)
        return chosen
    stats = (f"lambda = {verdict.position:.2f} (0: zero terminal SNR, 1: declared schedule; margin {verdict.margin:.2f}) "
             f"from c_hf = {verdict.coefficient:.3f} at t = {verdict.timestep}, expected {verdict.kappa_zero:.3f} or "
             f"{verdict.kappa_declared:.3f}")
    zero = verdict.trained_for == terminal_detect.ZERO_SNR
    text = (f"terminal: detected {'training with zero terminal SNR: exact' if zero else 'training on the declared schedule: unchanged'} "
            f"({stats})")
    if zero != detection.keys_zero_snr:
        _say(detection, f"{text}; the checkpoint's keys say {keys}: they are wrong or missing", warn=True)
    else:
        _say(detection, f"{text}, as the checkpoint's keys say")
    return "exact" if zero else None


def probe(sampling, guider, noise: torch.Tensor, model_options: dict, with_terminal: bool):
    """One evaluation on the sampling's noise and positive conditioning: at the top of the table,
    and (with_terminal) at the probe timestep. Returns (outputs at the top, at the probe) or None."""
    conds = getattr(guider, "conds", None) or {}
    positive = conds.get("positive") or next(iter(conds.values()), None)
    if positive is None:
        return None
    z = noise.to(torch.float32)
    batch = z.shape[0]
    table = sampling.sigmas
    sigmas = [table[-1]] * batch
    if with_terminal:
        sigmas += [table[terminal_detect.probe_timestep(len(table))]] * batch
    sigma = torch.stack(sigmas).to(z.device, torch.float32)
    inputs = torch.cat([z] * (2 if with_terminal else 1))
    x = inputs * (1 + sigma.to(torch.float64) ** 2).sqrt().to(z).reshape(-1, *([1] * (z.ndim - 1)))
    sampling.zsnr_capture = []
    try:
        comfy.samplers.calc_cond_batch(guider.inner_model, [positive], x, sigma, model_options)
    finally:
        captured, sampling.zsnr_capture = sampling.zsnr_capture, None
    PROBE_COUNTS["terminal" if with_terminal else "prediction"] += 1
    if not captured or captured[0].shape[0] % len(inputs):
        return None
    out = captured[0][: len(inputs)].float().cpu()
    return out[:batch], (out[batch:] if with_terminal else None), z.cpu()


@torch.no_grad()
def detect_before_sampling(executor, guider, sigmas, extra_args, callback, noise, latent_image, denoise_mask, disable_pbar):
    """SAMPLER_SAMPLE wrapper (outside the first-step wrapper): the probe, when one is needed."""
    sampling = guider.inner_model.model_sampling
    detection = getattr(sampling, "zsnr_detection", None)
    if isinstance(sampling, AutoDetectMixin) and detection is not None and detection.pending and len(sigmas) > 1:
        from_top = judges(top_alphas_cumprod(sampling, sigmas[0]))
        if detection.terminal_pending or (detection.prediction_pending and not from_top):
            sigmas = _probe_and_decide(sampling, detection, guider, sigmas, extra_args, noise)
    return executor(guider, sigmas, extra_args, callback, noise, latent_image, denoise_mask, disable_pbar)


def _probe_and_decide(sampling, detection, guider, sigmas, extra_args, noise):
    result = probe(sampling, guider, noise, extra_args.get("model_options", {}), detection.terminal_pending)
    if result is None:
        LOG.warning("zsnr: %s: no positive conditioning to probe the network with; nothing detected", detection.source[0])
        return sigmas
    at_top, at_probe, z = result
    top = top_alphas_cumprod(sampling, sampling.sigmas[-1])
    verdict = judge(sampling.zsnr_prediction, at_top, z, top)
    if detection.prediction_pending:
        decide_prediction(sampling, detection, verdict, "one probe evaluation at the top of the schedule")
    if not detection.terminal_pending:
        return sigmas
    terminal_verdict = None
    if verdict.looks_like == V_PREDICTION and sampling.zsnr_prediction == V_PREDICTION:
        t_probe = terminal_detect.probe_timestep(len(sampling.sigmas))
        terminal_verdict = terminal_detect.judge_terminal(at_probe, z, sampling.zsnr_base_alphas_cumprod, t_probe)
    chosen = decide_terminal(sampling, detection, terminal_verdict, verdict)
    if chosen == sampling.zsnr_terminal:
        return sigmas
    old_table = sampling.sigmas.detach().clone()
    sampling.configure(sampling.zsnr_base_alphas_cumprod, chosen, sampling.zsnr_prediction)
    return terminal_detect.remap_sigmas(sigmas, old_table, sampling.sigmas)


def install(patcher, sampling) -> None:
    """The probe wrapper, outside the first-step wrapper (call before install_first_step_wrapper,
    which re-adds its own key after this one; the first key added runs outermost)."""
    patcher.remove_wrappers_with_key(comfy.patcher_extension.WrappersMP.SAMPLER_SAMPLE, WRAPPER_KEY)
    if isinstance(sampling, AutoDetectMixin):
        patcher.add_wrapper_with_key(comfy.patcher_extension.WrappersMP.SAMPLER_SAMPLE, WRAPPER_KEY, detect_before_sampling)


def inherited(patcher) -> Detection | None:
    """The pending detection of a model a zsnr node already patched (VPredictionAdapter auto
    followed by ZeroTerminalSNR keeps detecting the prediction)."""
    detection = getattr(patcher.get_model_object("model_sampling"), "zsnr_detection", None)
    return detection if detection is not None and detection.prediction_pending else None
