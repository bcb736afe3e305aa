"""Timestep spacing (paper Table 2) and the sigmas a scheduler returns for it.

Timesteps are 0-indexed (the paper's t minus 1) and descending, as diffusers' DDIMScheduler and
ComfyUI's samplers use them. The integer spacings reproduce DDIMScheduler.set_timesteps bit for
bit, including numpy's round-half-even, so a sampler here starts where diffusers starts.
logsnr_uniform and logsnr_resolution (ours, not in the paper; schedules/logsnr_spacing.py) start
at the terminal timestep like trailing and space the rest uniformly in log-SNR of the SD family's
rescaled schedule, logsnr_resolution over a window that moves with the latent size.
"""

from __future__ import annotations

import math
import operator

import torch

from .conversions import interpolate_at_timesteps
from .logsnr_spacing import check_latent_size, logsnr_resolution_timesteps, logsnr_uniform_timesteps


def _count(name: str, value, minimum: int) -> int:
    """An integer argument, refusing floats and bools that would silently truncate."""
    try:
        if isinstance(value, bool):
            raise TypeError
        number = operator.index(value)
    except TypeError:
        raise ValueError(f"input '{name}' = {value!r} is not allowed; expected an integer") from None
    if number < minimum:
        raise ValueError(f"input '{name}' = {number} is not allowed; expected an integer >= {minimum}")
    return number


def _check_spacing(spacing: str) -> None:
    if spacing not in SPACING_RULES:
        raise ValueError(f"input 'spacing' = {spacing!r} is not allowed; valid: {', '.join(SPACING_RULES)}")


def trailing_timesteps(steps: int, num_train_timesteps: int, steps_offset: int = 0,
                       latent_size=None) -> torch.Tensor:
    """Paper Table 2 "trailing" (DPM-Solver): round(arange(T, 0, -T/S)) - 1, always starting at T-1.

    numpy's arange, which diffusers uses, computes element i as T + i·((T - T/S) - T); the same
    expression here keeps the round-half-even ties identical. diffusers' arange sometimes yields
    S+1 elements (the extra one is -1, an out-of-range index); only the first S are taken.
    """
    total = float(num_train_timesteps)
    step = (total - total / steps) - total
    points = total + torch.arange(steps, dtype=torch.float64) * step
    return torch.round(points) - 1


def leading_timesteps(steps: int, num_train_timesteps: int, steps_offset: int = 0,
                      latent_size=None) -> torch.Tensor:
    """Paper Table 2 "leading" (DDIM, PNDM): arange(0, S)·(T // S) + steps_offset, descending.

    The largest timestep is (S-1)·(T // S) + steps_offset, which can fall far below T-1: sampling
    then never starts from the terminal SNR (paper §3.3).
    """
    ratio = num_train_timesteps // steps
    top = (steps - 1) * ratio + steps_offset
    if top > num_train_timesteps - 1:
        raise ValueError(
            f"input 'steps_offset' = {steps_offset} is not allowed with leading spacing and {steps} steps: "
            f"the first timestep would be {top}, beyond the last training timestep {num_train_timesteps - 1}"
        )
    return (torch.arange(steps, dtype=torch.float64) * ratio + steps_offset).flip(0)


def linspace_timesteps(steps: int, num_train_timesteps: int, steps_offset: int = 0,
                       latent_size=None) -> torch.Tensor:
    """Paper Table 2 "linspace" (iDDPM): round(linspace(0, T-1, S)), descending.

    Written as numpy.linspace computes it (i·((T-1)/(S-1)), last point set to T-1 exactly) so the
    round-half-even ties match diffusers. For S = 1 this is the single timestep 0, as in diffusers.
    """
    last = float(num_train_timesteps - 1)
    if steps == 1:
        return torch.zeros(1, dtype=torch.float64)
    points = torch.arange(steps, dtype=torch.float64) * (last / (steps - 1))
    points[-1] = last
    return torch.round(points).flip(0)


def sgm_uniform_timesteps(steps: int, num_train_timesteps: int, steps_offset: int = 0,
                          latent_size=None) -> torch.Tensor:
    """ComfyUI's sgm_uniform: linspace(T-1, 0, S+1)[:-1], fractional timesteps uniform in t.

    Same rule as comfy.samplers.normal_scheduler(..., sgm=True); it differs from trailing only
    in not rounding to training timesteps.
    """
    return torch.linspace(num_train_timesteps - 1, 0, steps + 1, dtype=torch.float64)[:-1]


# The one registry of spacings: name -> rule(steps, num_train_timesteps, steps_offset=0,
# latent_size=None) giving S descending 0-indexed timesteps. Adding a spacing is one rule and one
# entry here: the SIGMAS node, the host's scheduler list, the schedule plot and the /zsnr/timesteps
# route all read it. steps_offset matters to leading only, as in diffusers; latent_size (height,
# width in latent positions, or None: the reference size, all the host's scheduler list can give)
# to logsnr_resolution only. The order is the node's option order.
SPACING_RULES = {
    "trailing": trailing_timesteps,
    "leading": leading_timesteps,
    "linspace": linspace_timesteps,
    "sgm_uniform": sgm_uniform_timesteps,
    "logsnr_uniform": logsnr_uniform_timesteps,
    "logsnr_resolution": logsnr_resolution_timesteps,
}
SPACINGS = tuple(SPACING_RULES)
# the rules that read latent_size; GET /zsnr/timesteps tells the frontend (reads_latent_size)
SIZE_AWARE_SPACINGS = ("logsnr_resolution",)


def select_timesteps(
    spacing: str, steps: int, num_train_timesteps: int = 1000, steps_offset: int = 0, latent_size=None
) -> torch.Tensor:
    """S descending 0-indexed timesteps (float64) for a spacing rule of paper Table 2 (or
    logsnr_uniform / logsnr_resolution, ours).

    steps_offset only affects leading, as in diffusers (where the other spacings ignore it);
    latent_size (height, width) only logsnr_resolution.
    """
    _check_spacing(spacing)
    total = _count("num_train_timesteps", num_train_timesteps, 1)
    steps = _count("steps", steps, 1)
    steps_offset = _count("steps_offset", steps_offset, 0)
    latent_size = None if latent_size is None else check_latent_size(latent_size)
    if steps > total:
        raise ValueError(
            f"input 'steps' = {steps} is not allowed; expected at most the {total} training timesteps"
        )
    return SPACING_RULES[spacing](steps, total, steps_offset=steps_offset, latent_size=latent_size)


def sigmas_at_timesteps(timesteps: torch.Tensor, sigma_table: torch.Tensor) -> torch.Tensor:
    """sigma(t) from a table holding sigma at each training timestep, in float64.

    Integer t: the table entry itself (no rounding through logs). Fractional t: linear
    interpolation in log-sigma between the neighbouring entries, as ComfyUI's
    ModelSamplingDiscrete.sigma() (conversions.interpolate_at_timesteps, the one interpolator). An infinite top entry (alphā_T = 0) gives inf at T-1 and for
    every t above T-2, the limit of that interpolation; it never gives NaN.
    """
    table = torch.as_tensor(sigma_table, dtype=torch.float64)
    if table.ndim != 1 or table.numel() == 0:
        raise ValueError(
            f"input 'sigma_table' has shape {tuple(table.shape)}; expected a non-empty 1-D table"
        )
    return interpolate_at_timesteps(table, timesteps, torch.log, torch.exp)


def _check_sigma_table(table: torch.Tensor) -> None:
    if table.ndim != 1 or table.numel() == 0:
        raise ValueError(
            f"input 'sigma_table' has shape {tuple(table.shape)}; expected a non-empty 1-D table"
        )
    if not torch.isfinite(table).all():
        raise ValueError(
            "input 'sigma_table' has a non-finite entry; a sampler's sigmas must be finite, so represent "
            "SNR 0 by a finite sentinel top sigma (e.g. 4518.76, ComfyUI's zsnr value)"
        )
    if table[0] <= 0 or (table.numel() > 1 and not (table[1:] > table[:-1]).all()):
        raise ValueError("input 'sigma_table' must be positive and strictly increasing in t")


def full_schedule_steps(steps: int, denoise: float, num_train_timesteps: int) -> int | None:
    """The denoise rule of ComfyUI's BasicScheduler, in one place: the schedule is built for
    int(steps/denoise) steps and its last `steps` are kept; denoise <= 0 samples nothing (None)."""
    denoise = float(denoise)
    if not denoise <= 1.0:  # also refuses NaN
        raise ValueError(f"input 'denoise' = {denoise} is not allowed; expected a value in [0, 1]")
    if denoise <= 0.0:
        return None
    # steps / denoise can overflow to inf for subnormal denoise: compare before int()
    ratio = steps / denoise
    total_steps = steps if denoise == 1.0 else (int(ratio) if math.isfinite(ratio) else num_train_timesteps + 1)
    if denoise < 1.0 and total_steps > num_train_timesteps:
        raise ValueError(
            f"input 'denoise' = {denoise} is not allowed with {steps} steps: the full schedule would need "
            f"{total_steps} steps, more than the {num_train_timesteps} training timesteps"
        )
    return total_steps


def spacing_sigmas(
    spacing: str,
    steps: int,
    sigma_table: torch.Tensor,
    denoise: float = 1.0,
    steps_offset: int = 0,
    latent_size=None,
) -> torch.Tensor:
    """The SIGMAS a scheduler node returns: steps+1 float32 values, strictly decreasing, last 0.

    T = len(sigma_table) (sigma at each training timestep, increasing). denoise as ComfyUI's
    BasicScheduler: <= 0 gives an empty tensor; below 1 the schedule is computed for
    int(steps/denoise) steps and its last steps+1 values are kept. latent_size (height, width of
    the latent, or None) reaches the rule (logsnr_resolution uses it).
    """
    _check_spacing(spacing)
    table = torch.as_tensor(sigma_table, dtype=torch.float64)
    _check_sigma_table(table)
    steps = _count("steps", steps, 1)
    total_steps = full_schedule_steps(steps, denoise, table.numel())
    if total_steps is None:
        return torch.zeros(0, dtype=torch.float32, device=table.device)
    timesteps = select_timesteps(spacing, total_steps, table.numel(), steps_offset, latent_size)
    sigmas = torch.cat(
        [sigmas_at_timesteps(timesteps, table), torch.zeros(1, dtype=torch.float64, device=table.device)]
    )
    return sigmas[-(steps + 1) :].to(torch.float32)
