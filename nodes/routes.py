"""GET /zsnr/timesteps: the timesteps, sigmas and log-SNR a spacing selects, for the live preview.

The frontend widget (web/js/zsnr.js) asks this route instead of re-implementing the math in
JavaScript: the answer comes from the same functions the nodes run (schedules/spacing.py,
schedules/plot_data.py) on the same sampling object ZeroTerminalSNR installs (make_sampling), so
the preview shows what the sampler will do.

`terminal` is the model's terminal mode: none (the schedule as declared), exact (SNR 0, drawn as
log-SNR -inf), clamp_comfy (alphā_T = 4.9e-8: ZeroTerminalSNR's clamp_comfy and the host's own
ModelSamplingDiscrete zsnr option) or clamp_diffusers (alphā_T = 2^-24); a clamped top has a
finite log-SNR. The older boolean `zsnr` is still accepted: true means exact (what it always
meant here: ZeroTerminalSNR's default), false means none; giving both is refused.

`latent_height` and `latent_width` (latent positions, both or neither) are the size of the latent
TimestepSpacingScheduler's `latent` input will carry; they reach the spacing as its latent_size
(logsnr_resolution moves its window by it, schedules/logsnr_spacing.py; the other spacings ignore
it). Without them the answer is the one for the 64x64 reference size, as the node gives with its
`latent` unconnected. The answer echoes `latent_size`: [height, width] or null, and says in
`reads_latent_size` whether the spacing reads it (schedules/spacing.py, SIZE_AWARE_SPACINGS), so the
frontend never keeps a second list of those spacings.
"""
from __future__ import annotations

import logging
import math
import re
import sys

from aiohttp import web

from ..schedules.betas import alphas_cumprod_from_betas, make_betas
from ..schedules.plot_data import preview_series, selected_timesteps
from ..schedules.snr_zero import TERMINALS, clamp_fits
from ..schedules.spacing import SIZE_AWARE_SPACINGS, SPACINGS, spacing_sigmas
from .validation import MAX_RESOLUTION
from .zsnr_sampling import make_sampling

LOG = logging.getLogger("zsnr")
ROUTE = "/zsnr/timesteps"
# The discrete families a host model can have (ComfyUI's "linear" is SD's scaled_linear).
SCHEDULES = ("scaled_linear", "linear", "cosine")
MAX_TRAIN_TIMESTEPS = 10000
BOOLEANS = {"true": True, "1": True, "false": False, "0": False}
TERMINAL_MODES = ("none", *TERMINALS)  # none | exact | clamp_comfy | clamp_diffusers
LATENT_PARAMETERS = ("latent_height", "latent_width")
PARAMETERS = ("spacing", "steps", "denoise", "steps_offset", "schedule", "terminal", "zsnr", "T",
              *LATENT_PARAMETERS)


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
    return {
        "spacing": _choice(query, "spacing", "trailing", SPACINGS),
        "steps": _integer(query, "steps", 20, 1, total),  # at most one step per training timestep
        "denoise": _fraction(query, "denoise", 1.0),
        "steps_offset": _integer(query, "steps_offset", 0, 0, total - 1),
        "schedule": _choice(query, "schedule", "scaled_linear", SCHEDULES),
        "terminal": _terminal(query),
        "num_train_timesteps": total,
        "latent_size": _latent_size(query),
    }


def _latent_size(query) -> tuple[int, int] | None:
    """(latent_height, latent_width), or None when neither is given; one without the other is refused
    (a size half given would silently become the reference size)."""
    given = [name for name in LATENT_PARAMETERS if name in query]
    if len(given) == 1:
        missing = next(name for name in LATENT_PARAMETERS if name not in given)
        raise QueryError(missing, None, "", f"{ROUTE}: parameter '{missing}' is missing: {given[0]} = "
                         f"{query.get(given[0])!r} is given, and the latent's size needs both latent_height "
                         "and latent_width (latent positions), or neither for the 64x64 reference size")
    if not given:
        return None
    # a pixel-space latent (EmptyChromaRadianceLatentImage) has MAX_RESOLUTION positions a side at
    # most, SD's VAE an eighth of it
    return tuple(_integer(query, name, 0, 1, MAX_RESOLUTION) for name in LATENT_PARAMETERS)


def _terminal(query) -> str:
    """`terminal`, or the older boolean `zsnr` (true: exact, false: none), never both."""
    if "zsnr" not in query:
        return _choice(query, "terminal", "none", TERMINAL_MODES)
    if "terminal" in query:
        raise QueryError("zsnr", query.get("zsnr"), "", f"{ROUTE}: parameter 'zsnr' is the older form of "
                         f"'terminal'; give one of them, not both (terminal = {query.get('terminal')!r})")
    text = query.get("zsnr").lower()
    if text not in BOOLEANS:
        raise QueryError("zsnr", query.get("zsnr"), "true or false")
    return "exact" if BOOLEANS[text] else "none"


def timesteps_answer(spacing: str, steps: int, denoise: float, steps_offset: int, schedule: str, terminal: str,
                     num_train_timesteps: int, latent_size: tuple[int, int] | None = None) -> dict:
    """The JSON answer: what TimestepSpacingScheduler returns on a model of this schedule (after
    ZeroTerminalSNR with this terminal mode unless none) and where its steps lie on the log-SNR curve.

    JSON has no infinity: log-SNR = -inf (SNR 0) is sent as null and flagged in `snr_zero`.
    `zsnr` (the schedule was rescaled) stays in the answer for clients of the boolean form.
    """
    base = alphas_cumprod_from_betas(make_betas(schedule, num_train_timesteps))
    rescaled = terminal != "none"
    sampling = make_sampling(base, terminal if rescaled else None, "v_prediction")
    _check_clamp_fits(sampling.zsnr_alphas_cumprod, terminal, schedule)
    try:
        sigmas = spacing_sigmas(spacing, steps, sampling.sigmas, denoise=denoise, steps_offset=steps_offset,
                                latent_size=latent_size)
    except ValueError as error:  # the rule names its own argument; here it is two query parameters
        if "'latent_size'" not in str(error):
            raise
        height, width = latent_size
        raise QueryError("latent_height", latent_size, "", f"{ROUTE}: parameters 'latent_height' and "
                         f"'latent_width' = {height}x{width}: {error}") from None
    timesteps = selected_timesteps(spacing, steps, num_train_timesteps, denoise, steps_offset, latent_size)
    series = preview_series(sampling.zsnr_alphas_cumprod, timesteps, base if rescaled else None)
    return {
        "spacing": spacing, "steps": steps, "denoise": denoise, "steps_offset": steps_offset,
        "schedule": schedule, "terminal": terminal, "zsnr": rescaled, "T": num_train_timesteps,
        "latent_size": None if latent_size is None else list(latent_size),
        "reads_latent_size": spacing in SIZE_AWARE_SPACINGS,
        "timesteps": timesteps.tolist(),
        "sigmas": sigmas.tolist(),
        **series,
    }


def _check_clamp_fits(alphas_cumprod, terminal: str, schedule: str) -> None:
    """A clamp must stay below alphā at t = T-2 of the rescaled schedule (schedules/snr_zero.py,
    clamp_fits), or the sigmas stop increasing in t."""
    if terminal == "none" or clamp_fits(alphas_cumprod, terminal):
        return
    last, before = float(alphas_cumprod[-1]), float(alphas_cumprod[-2])
    raise QueryError("terminal", terminal, "", f"{ROUTE}: parameter 'terminal' = {terminal!r} sets alphā_T = {last:.3g}, "
                     f"not below alphā_(T-2) = {before:.3g} of the rescaled {schedule} schedule, so its "
                     "sigmas would not increase in t; use terminal = exact")


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
