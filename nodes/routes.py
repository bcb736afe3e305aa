"""GET /zsnr/timesteps: the timesteps, sigmas and log-SNR a spacing selects, for the live preview.

The frontend widget (web/js/zsnr.js) asks this route instead of re-implementing the math in
JavaScript: the answer comes from the same functions the nodes run (schedules/spacing.py,
schedules/plot_data.py) on the same sampling object ZeroTerminalSNR installs (make_sampling), so
the preview shows what the sampler will do.
"""
from __future__ import annotations

import logging
import math
import re
import sys

import torch
from aiohttp import web

from ..schedules.betas import alphas_cumprod_from_betas, make_betas
from ..schedules.conversions import log_snr_from_alphas_cumprod
from ..schedules.plot_data import json_number, log_snr_at_timesteps, selected_timesteps
from ..schedules.spacing import SPACINGS, spacing_sigmas
from .zsnr_sampling import make_sampling

LOG = logging.getLogger("zsnr")
ROUTE = "/zsnr/timesteps"
# The discrete families a host model can have (ComfyUI's "linear" is SD's scaled_linear).
SCHEDULES = ("scaled_linear", "linear", "cosine")
MAX_TRAIN_TIMESTEPS = 10000
BOOLEANS = {"true": True, "1": True, "false": False, "0": False}
PARAMETERS = ("spacing", "steps", "denoise", "steps_offset", "schedule", "zsnr", "T")


class QueryError(ValueError):
    def __init__(self, parameter: str, value, allowed: str, message: str | None = None):
        super().__init__(message or f"{ROUTE}: parameter '{parameter}' = {value!r} is not allowed; expected {allowed}")
        self.parameter = parameter


def _integer(query, name: str, default: int, low: int, high: int) -> int:
    text = query.get(name)
    if text is None:
        return default
    allowed = f"an integer from {low} to {high}"
    try:
        value = int(text, 10)
    except ValueError:
        raise QueryError(name, text, allowed) from None
    if not low <= value <= high:
        raise QueryError(name, text, allowed)
    return value


def _fraction(query, name: str, default: float) -> float:
    text = query.get(name)
    if text is None:
        return default
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not 0.0 <= value <= 1.0:  # also refuses NaN and inf
        raise QueryError(name, text, "a number from 0 to 1")
    return value


def _choice(query, name: str, default: str, choices) -> str:
    text = query.get(name, default)
    if text not in choices:
        raise QueryError(name, text, "one of " + ", ".join(choices))
    return text


def parse_query(query) -> dict:
    """Validated parameters from a query mapping (aiohttp's MultiDict or a plain dict).

    Unknown or repeated parameters are refused too, so a typo never silently falls back to a default.
    """
    for name in query:
        if name not in PARAMETERS:
            raise QueryError(name, query.get(name), "", f"{ROUTE}: parameter '{name}' is unknown; "
                             f"allowed parameters: {', '.join(PARAMETERS)}")
        if hasattr(query, "getall") and len(query.getall(name)) > 1:
            raise QueryError(name, query.getall(name), "a single value")
    total = _integer(query, "T", 1000, 2, MAX_TRAIN_TIMESTEPS)
    zsnr_text = query.get("zsnr", "false").lower()
    if zsnr_text not in BOOLEANS:
        raise QueryError("zsnr", query.get("zsnr"), "true or false")
    return {
        "spacing": _choice(query, "spacing", "trailing", SPACINGS),
        "steps": _integer(query, "steps", 20, 1, total),  # at most one step per training timestep
        "denoise": _fraction(query, "denoise", 1.0),
        "steps_offset": _integer(query, "steps_offset", 0, 0, total - 1),
        "schedule": _choice(query, "schedule", "scaled_linear", SCHEDULES),
        "zsnr": BOOLEANS[zsnr_text],
        "num_train_timesteps": total,
    }


def _numbers(values: torch.Tensor) -> list[float | None]:
    return [json_number(float(v)) for v in values.tolist()]


def timesteps_answer(spacing: str, steps: int, denoise: float, steps_offset: int, schedule: str, zsnr: bool,
                     num_train_timesteps: int) -> dict:
    """The JSON answer: what TimestepSpacingScheduler returns on a model of this schedule (with
    ZeroTerminalSNR exact when zsnr) and where its steps lie on the log-SNR curve.

    JSON has no infinity: log-SNR = -inf (SNR 0) is sent as null and flagged in `snr_zero`.
    """
    base = alphas_cumprod_from_betas(make_betas(schedule, num_train_timesteps))
    sampling = make_sampling(base, "exact" if zsnr else None, "v_prediction")
    sigmas = spacing_sigmas(spacing, steps, sampling.sigmas, denoise=denoise, steps_offset=steps_offset)
    timesteps = selected_timesteps(spacing, steps, num_train_timesteps, denoise, steps_offset)
    log_snr = log_snr_at_timesteps(sampling.zsnr_alphas_cumprod, timesteps)
    curve = log_snr_from_alphas_cumprod(sampling.zsnr_alphas_cumprod)
    return {
        "spacing": spacing, "steps": steps, "denoise": denoise, "steps_offset": steps_offset,
        "schedule": schedule, "zsnr": zsnr, "T": num_train_timesteps,
        "timesteps": timesteps.tolist(),
        "sigmas": sigmas.tolist(),
        "log_snr": _numbers(log_snr),
        "snr_zero": (log_snr == -math.inf).tolist(),
        "log_snr_curve": _numbers(curve),
        "original_log_snr_curve": _numbers(log_snr_from_alphas_cumprod(base)) if zsnr else None,
    }


async def timesteps_handler(request: web.Request) -> web.Response:
    try:
        answer = timesteps_answer(**parse_query(request.query))
    except QueryError as error:
        return web.json_response({"error": str(error), "parameter": error.parameter}, status=400)
    except ValueError as error:  # a combination the spacing rules refuse (e.g. leading + offset)
        named = re.search(r"input '(\w+)'", str(error))
        return web.json_response({"error": f"{ROUTE}: {error}", "parameter": named and named.group(1)},
                                 status=400)
    return web.json_response(answer)


def register_routes() -> bool:
    """Add the route to the host's server; True when it is (or already was) registered.

    Only a running server has PromptServer.instance; in-process hosts (tests, scripts) have no
    server, and importing it there would start building one, so an unloaded `server` module is
    left alone. Safe to call more than once.
    """
    server_module = sys.modules.get("server")
    prompt_server = getattr(getattr(server_module, "PromptServer", None), "instance", None)
    if prompt_server is None:
        return False
    if any(getattr(route, "path", None) == ROUTE for route in prompt_server.routes):
        return True
    prompt_server.routes.get(ROUTE)(timesteps_handler)
    LOG.info("zsnr: registered GET %s", ROUTE)
    return True
