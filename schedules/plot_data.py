"""What a schedule plot shows: curves over t, the sampler's steps on them, the SNR-0 end, axes.

Shared by the ZSNRSchedulePlot node and the /zsnr/timesteps route, so the image, the live
preview and the sampler agree. Values stay exact at SNR = 0 (log-SNR = -inf, sigma = inf): the
plot marks that end explicitly instead of clipping it to a finite number.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

from .conversions import interpolate_at_timesteps, log_snr_from_alphas_cumprod, timestep_from_sigma
from .spacing import full_schedule_steps, select_timesteps

Y_AXES = ("log_snr", "sqrt_alphas_cumprod", "sigma")
Y_LABELS = {"log_snr": "log-SNR", "sqrt_alphas_cumprod": "sqrt(alphas_cumprod)", "sigma": "sigma (log scale)"}
SNR_ZERO_LABELS = {
    "log_snr": "SNR = 0 (log-SNR = -inf)",
    "sqrt_alphas_cumprod": "SNR = 0 (sqrt(alphas_cumprod) = 0)",
    "sigma": "SNR = 0 (sigma = inf)",
}


def _check_y_axis(y_axis: str) -> None:
    if y_axis not in Y_AXES:
        raise ValueError(f"input 'y_axis' = {y_axis!r} is not allowed; valid: {', '.join(Y_AXES)}")


def selected_timesteps(spacing: str, steps: int, num_train_timesteps: int, denoise: float = 1.0,
                       steps_offset: int = 0, latent_size=None) -> torch.Tensor:
    """The timesteps behind spacing.spacing_sigmas: one per sigma it returns, before its final 0.

    The denoise rule is spacing.full_schedule_steps, the one spacing_sigmas applies; denoise <= 0
    gives none. latent_size (height, width in latent positions, or None: the reference size) is
    spacing_sigmas' own argument, passed to the rule the same way (logsnr_resolution reads it).
    """
    total_steps = full_schedule_steps(steps, denoise, num_train_timesteps)
    if total_steps is None:
        return torch.zeros(0, dtype=torch.float64)
    return select_timesteps(spacing, total_steps, num_train_timesteps, steps_offset, latent_size)[-steps:]


def timesteps_from_sigmas(sigmas: torch.Tensor, sigma_table: torch.Tensor) -> torch.Tensor:
    """The timestep of each step of a SIGMAS schedule (conversions.timestep_from_sigma).

    Zero sigmas are where sampling ends (a clean sample, log-SNR = +inf), not steps; they are
    dropped. A sigma at or above the table's top, such as the SNR-0 sentinel, maps to T-1.
    """
    sigmas = torch.as_tensor(sigmas, dtype=torch.float64).reshape(-1).cpu()
    if sigmas.isnan().any() or (sigmas < 0).any():
        raise ValueError(f"input 'sigmas' holds NaN or negative values: {sigmas.tolist()[:8]}")
    steps = sigmas[sigmas > 0]
    return timestep_from_sigma(steps, torch.as_tensor(sigma_table, dtype=torch.float64).cpu())


def log_snr_at_timesteps(alphas_cumprod: torch.Tensor, timesteps: torch.Tensor) -> torch.Tensor:
    """log-SNR at (possibly fractional) timesteps, float64 (conversions.interpolate_at_timesteps:
    integer t exact, so alphā = 0 gives -inf; fractional t linear in log-SNR, as the host)."""
    table = log_snr_from_alphas_cumprod(alphas_cumprod).cpu()
    return interpolate_at_timesteps(table, torch.as_tensor(timesteps, dtype=torch.float64).reshape(-1).cpu())


def axis_values(log_snr: torch.Tensor, y_axis: str) -> torch.Tensor:
    """The plotted quantity from log-SNR λ (float64): λ itself, sqrt(alphā) = sqrt(sigmoid(λ)),
    or sigma = exp(-λ/2). λ = -inf (SNR 0) gives -inf, exactly 0 and inf respectively."""
    _check_y_axis(y_axis)
    log_snr = torch.as_tensor(log_snr, dtype=torch.float64)
    if y_axis == "log_snr":
        return log_snr
    if y_axis == "sqrt_alphas_cumprod":
        return torch.sigmoid(log_snr).sqrt()
    return torch.exp(-log_snr / 2)


def to_plot_coordinate(values: torch.Tensor, y_axis: str) -> torch.Tensor:
    """Vertical plot coordinate: sigma spans five decades, so it is drawn as log10(sigma)."""
    return values.log10() if y_axis == "sigma" else values


def nice_ticks(low: float, high: float, count: int = 6) -> list[float]:
    """Round tick positions (1, 2 or 5 × 10^k apart) covering [low, high] with about `count` ticks."""
    if not (math.isfinite(low) and math.isfinite(high)) or high <= low:
        raise ValueError(f"tick range [{low}, {high}] must be finite and increasing")
    raw = (high - low) / max(count - 1, 1)
    magnitude = 10 ** math.floor(math.log10(raw))
    step = min((m * magnitude for m in (1, 2, 5, 10)), key=lambda candidate: abs(math.log(candidate / raw)))
    first = math.ceil(low / step - 1e-9)
    last = math.floor(high / step + 1e-9)
    return [round(i * step, 12) for i in range(first, last + 1)]


def tick_label(position: float, y_axis: str) -> str:
    if y_axis == "sigma":
        return f"{10 ** position:g}"
    return f"{position:g}"


@dataclass
class Curve:
    """One schedule over every training timestep. `y` is in plot coordinates and may hold ±inf
    at SNR-0 timesteps (listed in `snr_zero_timesteps`); the renderer draws those as markers."""

    label: str
    t: torch.Tensor
    y: torch.Tensor
    snr_zero_timesteps: list[int] = field(default_factory=list)


@dataclass
class PlotData:
    y_axis: str
    y_label: str
    curves: list[Curve]
    marked_timesteps: torch.Tensor
    marked_y: torch.Tensor
    x_range: tuple[float, float]
    y_range: tuple[float, float]
    x_ticks: list[float]
    y_ticks: list[tuple[float, str]]
    snr_zero_label: str


def schedule_curve(label: str, alphas_cumprod: torch.Tensor, y_axis: str) -> Curve:
    alphas_cumprod = torch.as_tensor(alphas_cumprod, dtype=torch.float64).cpu()
    log_snr = log_snr_from_alphas_cumprod(alphas_cumprod)
    y = to_plot_coordinate(axis_values(log_snr, y_axis), y_axis)
    zero = torch.nonzero(alphas_cumprod == 0).reshape(-1).tolist()
    return Curve(label, torch.arange(len(alphas_cumprod), dtype=torch.float64), y, zero)


def _y_range(values: list[torch.Tensor], y_axis: str) -> tuple[float, float]:
    finite = torch.cat([v[torch.isfinite(v)] for v in values])
    low, high = float(finite.min()), float(finite.max())
    if y_axis == "sqrt_alphas_cumprod":
        low, high = 0.0, max(high, 1.0)  # the full [0, 1] range: 0 is where SNR 0 lies
    pad = 0.06 * (high - low or 1.0)
    # room below (log_snr) or above (sigma) the last finite value for the SNR-0 marker
    return low - pad * (2 if y_axis == "log_snr" else 1), high + pad * (2 if y_axis == "sigma" else 1)


def build_plot_data(alphas_cumprod: torch.Tensor, y_axis: str, marked_timesteps: torch.Tensor,
                    original_alphas_cumprod: torch.Tensor | None = None,
                    label: str = "sampling schedule", original_label: str = "original schedule") -> PlotData:
    """Everything the plot shows, in plot coordinates: the sampling schedule, optionally the one it
    was rescaled from, the marked steps (on the sampling schedule) and round ticks."""
    _check_y_axis(y_axis)
    curves = [schedule_curve(label, alphas_cumprod, y_axis)]
    if original_alphas_cumprod is not None:
        curves.append(schedule_curve(original_label, original_alphas_cumprod, y_axis))
    marked = torch.as_tensor(marked_timesteps, dtype=torch.float64).reshape(-1).cpu()
    marked_y = to_plot_coordinate(axis_values(log_snr_at_timesteps(alphas_cumprod, marked), y_axis), y_axis)
    y_range = _y_range([c.y for c in curves] + [marked_y], y_axis)
    last = float(len(curves[0].t) - 1)
    if y_axis == "sigma":  # one tick per decade: 0.1, 1, 10, …
        positions = [float(p) for p in range(math.ceil(y_range[0]), math.floor(y_range[1]) + 1)]
    else:
        positions = nice_ticks(*y_range)
    y_ticks = [(p, tick_label(p, y_axis)) for p in positions]
    return PlotData(y_axis=y_axis, y_label=Y_LABELS[y_axis], curves=curves, marked_timesteps=marked,
                    marked_y=marked_y, x_range=(0.0, last), y_range=y_range, x_ticks=nice_ticks(0.0, last),
                    y_ticks=y_ticks, snr_zero_label=SNR_ZERO_LABELS[y_axis])


def json_number(value: float) -> float | None:
    """A float for JSON, which has no infinities: ±inf and NaN become None (null)."""
    return value if math.isfinite(value) else None


def _json_numbers(values: torch.Tensor) -> list[float | None]:
    return [json_number(float(v)) for v in values.tolist()]


def preview_series(alphas_cumprod: torch.Tensor, timesteps: torch.Tensor,
                   original_alphas_cumprod: torch.Tensor | None = None) -> dict:
    """What the live preview draws (the /zsnr/timesteps answer), JSON-ready.

    `log_snr` at the steps and `log_snr_curve` over every timestep of the sampling schedule, and
    `original_log_snr_curve` of the schedule it was rescaled from (None when it was not). Exact
    SNR 0 (alphā = 0) is log-SNR -inf, sent as None and flagged in `snr_zero`; a clamped terminal
    (alphā_T > 0) keeps its finite log-SNR log(alphā_T / (1 - alphā_T)).
    """
    log_snr = log_snr_at_timesteps(alphas_cumprod, timesteps)
    return {
        "log_snr": _json_numbers(log_snr),
        "snr_zero": (log_snr == -math.inf).tolist(),
        "log_snr_curve": _json_numbers(log_snr_from_alphas_cumprod(alphas_cumprod)),
        "original_log_snr_curve": None if original_alphas_cumprod is None
        else _json_numbers(log_snr_from_alphas_cumprod(original_alphas_cumprod)),
    }
