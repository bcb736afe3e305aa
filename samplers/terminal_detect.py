"""Was a v network trained with zero terminal SNR or on its declared (SD-style) schedule? Read
from the network itself, with one evaluation on pure noise (issue #25).

The statistic. Give a v network pure noise z (unit Gaussian) at timestep t, with a = sqrt(ā_t) and
s = sqrt(1-ā_t) of the schedule it was trained on. Its output is v_hat = a·eps_hat - s·x0_hat
with eps_hat = (z - a·x0_hat)/s (paper §2 Eq. 4 and §3.2), i.e.

    v_hat = (a·z - x0_hat) / s.

x0_hat is a posterior mean, an average of data images, which carries no fine detail of the noise
draw; so on the high-pass part of z (z minus its 2x2-block mean, prediction_check.high_pass) the
coefficient of v_hat is

    c_hf = <v_hat, hp(z)> / <hp(z), hp(z)> = a/s = sqrt(SNR_t),

the signal level the network was trained to expect at t, independently of the data. Algorithm 1
lowers every sqrt(ā_t) (paper §3.1: shift to 0 at T, scale to keep t = 0), so at a timestep near T
the declared schedule predicts kappa_declared = sqrt(SNR_t) and its zero-terminal-SNR rescale a
clearly smaller kappa_zero. The position of the measurement between the two,

    lambda = (c_hf - kappa_zero) / (kappa_declared - kappa_zero),

is 0 for a network trained with zero terminal SNR and 1 for one trained on the declared schedule.

Why not at t = T itself. There the exact denoisers differ most (kappa 0 against 0.068 on SD's
schedule), but trained networks do not learn the last few percent of the schedule, where the
rescaled ā is below 1e-4: measured on the pack's trained v networks, the zero-terminal-SNR ones
answer at t = 999 like the SD-schedule one, both with c_hf about 0.08 and both following a
brightness offset of their input (docs/detection.md, "Why not at t = T"). At PROBE_FRACTION of the
schedule (t = 849 of 1000) kappa_zero / kappa_declared = 0.59 on SD's schedule and the trained
networks land near their own schedule's value.

Verdicts: ZERO_SNR for lambda in ZERO_BAND, DECLARED for lambda in DECLARED_BAND, otherwise
UNDECIDED (between the bands, or so far outside both that the network follows neither schedule,
as a UNet with random weights does). A schedule whose rescale barely moves kappa at the probe
(relative gap under MIN_RELATIVE_GAP: DDPM's linear schedule, cosine) cannot be told.
"""
from __future__ import annotations

import math
from typing import NamedTuple

import torch

from ..schedules.betas import rescale_alphas_cumprod_zero_terminal_snr
from .prediction_check import (
    MAX_V_HIGH_FREQUENCY,
    flatten_samples,
    has_spatial_layout,
    high_frequency_fraction,
    high_pass,
)

ZERO_SNR, DECLARED, UNDECIDED = "zero terminal SNR", "declared schedule", "cannot tell"
PROBE_FRACTION = 0.85
ZERO_BAND = (-1.0, 0.35)
DECLARED_BAND = (0.65, 2.0)
MIN_RELATIVE_GAP = 0.2


class TerminalVerdict(NamedTuple):
    trained_for: str  # ZERO_SNR, DECLARED or UNDECIDED
    position: float  # lambda: 0 zero terminal SNR, 1 the declared schedule
    coefficient: float  # c_hf, averaged over the batch
    kappa_declared: float
    kappa_zero: float
    timestep: int
    margin: float  # distance of lambda inside its band (nan when undecided)
    reason: str = ""


def probe_timestep(num_timesteps: int) -> int:
    return round(PROBE_FRACTION * (num_timesteps - 1))


def signal_level(alphas_cumprod: torch.Tensor) -> torch.Tensor:
    """kappa = sqrt(ā/(1-ā)) = sqrt(SNR)."""
    alphas_cumprod = torch.as_tensor(alphas_cumprod, dtype=torch.float64)
    return (alphas_cumprod / (1 - alphas_cumprod)).sqrt()


def expected_levels(base_alphas_cumprod: torch.Tensor, timestep: int) -> tuple[float, float]:
    """(kappa_declared, kappa_zero) at `timestep` for the declared schedule and its Algorithm 1 rescale."""
    base = torch.as_tensor(base_alphas_cumprod, dtype=torch.float64)
    rescaled = rescale_alphas_cumprod_zero_terminal_snr(base)
    return float(signal_level(base[timestep])), float(signal_level(rescaled[timestep]))


def high_frequency_coefficient(output: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
    """c_hf per sample: the coefficient of the output on the high-pass part of the noise."""
    dtype = torch.promote_types(output.dtype, torch.float32)
    out, high = flatten_samples(high_pass(output.to(dtype)), dtype), flatten_samples(high_pass(noise.to(dtype)), dtype)
    return (out * high).sum(1) / (high * high).sum(1).clamp_min(torch.finfo(dtype).tiny)


def judge_terminal(output: torch.Tensor, noise: torch.Tensor, base_alphas_cumprod: torch.Tensor,
                   timestep: int) -> TerminalVerdict:
    """The verdict on a v network's output for pure noise `noise` (the VP input) at `timestep`."""
    kappa_declared, kappa_zero = expected_levels(base_alphas_cumprod, timestep)

    def verdict(trained_for, position=math.nan, coefficient=math.nan, margin=math.nan, reason=""):
        return TerminalVerdict(trained_for, position, coefficient, kappa_declared, kappa_zero, timestep, margin, reason)

    gap = kappa_declared - kappa_zero
    if gap < MIN_RELATIVE_GAP * kappa_declared:
        return verdict(UNDECIDED, reason=f"the declared schedule's rescale to zero terminal SNR moves sqrt(SNR) at "
                       f"t = {timestep} only from {kappa_declared:.3g} to {kappa_zero:.3g}: too little to tell")
    if not has_spatial_layout(noise):
        return verdict(UNDECIDED, reason="the latent has no 2-D spatial layout to take a high-pass part of")
    coefficient = float(high_frequency_coefficient(output, noise).mean())
    position = (coefficient - kappa_zero) / gap
    residual = output.to(torch.float64) - coefficient * noise.to(torch.float64)
    roughness = float(high_frequency_fraction(residual).mean())
    if roughness > MAX_V_HIGH_FREQUENCY:
        return verdict(UNDECIDED, position, coefficient, reason=f"the output is as rough as noise ({roughness:.2f} of its "
                       f"energy above the 2x2 mean): it is no posterior mean, so neither schedule applies")
    for trained_for, band in ((ZERO_SNR, ZERO_BAND), (DECLARED, DECLARED_BAND)):
        if band[0] <= position <= band[1]:
            return verdict(trained_for, position, coefficient, min(position - band[0], band[1] - position))
    return verdict(UNDECIDED, position, coefficient, reason=f"lambda = {position:.2f} lies in neither band "
                   f"(zero terminal SNR {ZERO_BAND}, declared schedule {DECLARED_BAND})")


def remap_sigmas(sigmas: torch.Tensor, from_sigma_table: torch.Tensor, to_sigma_table: torch.Tensor) -> torch.Tensor:
    """The same timesteps on another sigma table of the same length: each sigma's fractional
    timestep on `from` (log-sigma interpolation, as the host's ModelSamplingDiscrete.sigma() reads
    its table), read back on `to`. 0 stays 0; sigmas beyond the table's ends map to its ends."""
    source = from_sigma_table.detach().to("cpu", torch.float64).log()
    target = to_sigma_table.detach().to("cpu", torch.float64).log()
    values = sigmas.detach().to("cpu", torch.float64)
    log_sigma = values.clamp_min(torch.finfo(torch.float64).tiny).log().clamp(float(source[0]), float(source[-1]))
    index = torch.searchsorted(source, log_sigma).clamp(1, len(source) - 1)
    fraction = (log_sigma - source[index - 1]) / (source[index] - source[index - 1])
    mapped = (target[index - 1] + fraction * (target[index] - target[index - 1])).exp()
    return torch.where(values > 0, mapped, values).to(sigmas)
