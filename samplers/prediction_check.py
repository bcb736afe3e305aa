"""Does a network's first output, at the top of a discrete schedule, look like epsilon or like v,
or can that not be told from it?

A checkpoint sampled with the wrong prediction type gives grey, noisy or burnt images and no
message. At the first model call from the top of the schedule the two readings of the output
differ by an order of magnitude in one cheap statistic, the least-squares coefficient of the
output on the network's own input z (the VP sample):

    c = <out, z> / <z, z>.

Derivation. With z = sqrt(ā)·x0 + sqrt(1-ā)·eps (paper §2, Eq. 4), eps independent
of x0, and M = E[x0²] the data's second moment per element, E[z²] = D = ā·M + 1 - ā. A network
that predicts a posterior mean obeys E[E[y | z]·z] = E[y·z] (tower property) whatever the data
distribution, so in expectation
    epsilon network: c_eps = E[eps·z] / D = sqrt(1-ā) / D,
    v network (v = sqrt(ā)·eps - sqrt(1-ā)·x0, paper §3.2):
                     c_v = (sqrt(ā)·sqrt(1-ā) - sqrt(1-ā)·sqrt(ā)·M) / D = sqrt(ā(1-ā))·(1-M) / D.
At exact SNR 0 (ā = 0) these are 1 and 0: an epsilon network returns its input, a v network
returns -E[x0], which does not depend on z. The check only judges a first sigma whose
ā <= TOP_ALPHAS_CUMPROD (sigma >= 4.36; SD's own top, ā = 0.0047, and every zero-SNR top qualify)
and data with M <= MAX_SECOND_MOMENT (images in [-1, 1] have M <= 1, SD-family latents about 1):
there c_eps >= sqrt(0.95) / 1.1 = 0.89 and |c_v| <= sqrt(0.05·0.95) / 0.95 = 0.23, so the midpoint
THRESHOLD = 0.5 is at least 0.27 from either, about 4 standard deviations of c's sampling error
for the smallest latent the pack tests (192 elements per sample).

Three answers, not two (issue #25: a network nobody trained must not get a confident verdict).
c alone would call any output uncorrelated with z "v", a UNet with random weights included. So
each class must also pass what its derivation implies beyond c:
  - the input is what the derivation assumes: E[z²] = D in [0.95, 1.1], so the measured mean
    square q of z must lie in INPUT_ENERGY (D widened by its sampling error);
  - epsilon: c in EPSILON_BAND (c_eps widened by SAMPLING_SLACK), and the output is z up to
    sqrt(ā)·x0_hat/sqrt(1-ā): the residual energy ρ = |out - c·z|²/|z|² is at most
    ā·M/((1-ā)·D) <= 0.11, widened by SAMPLING_SLACK;
  - v: c in V_BAND, and the residual out - c·z is -sqrt(1-ā)·x0_hat, a posterior mean, i.e. an
    average of data images, not a function of the noise's fine detail. Measured by the share of
    its energy above the 2x2-block mean (high_frequency_fraction): 3/4 for white noise in
    expectation, MAX_V_HIGH_FREQUENCY = 1/2 at most for a v verdict. This assumes images (or
    latents) smoother than white noise, true of photographs, SD latents and every data set here
    (docs/detection.md gives the measured values, and those of UNets with random weights).
Anything else is UNDECIDED, and the caller keeps the class the checkpoint declares.
"""
from __future__ import annotations

import math
from typing import NamedTuple

import torch

EPSILON, V_PREDICTION, UNDECIDED = "epsilon", "v_prediction", "cannot tell"
TOP_ALPHAS_CUMPROD = 0.05
MAX_SECOND_MOMENT = 2.0
THRESHOLD = 0.5
_BOUND_EPS = math.sqrt(1 - TOP_ALPHAS_CUMPROD) / (TOP_ALPHAS_CUMPROD * MAX_SECOND_MOMENT + 1 - TOP_ALPHAS_CUMPROD)
_BOUND_V = math.sqrt(TOP_ALPHAS_CUMPROD * (1 - TOP_ALPHAS_CUMPROD)) / (1 - TOP_ALPHAS_CUMPROD)
assert _BOUND_V < THRESHOLD < _BOUND_EPS  # the derivation above, kept true if a constant changes
# about 3 standard deviations of c (and of ρ) for 192 elements per sample (1/sqrt(192) = 0.072)
SAMPLING_SLACK = 0.2
EPSILON_BAND = (_BOUND_EPS - SAMPLING_SLACK, 1 / math.sqrt(1 - TOP_ALPHAS_CUMPROD) + SAMPLING_SLACK)
V_BAND = (-_BOUND_V - SAMPLING_SLACK, _BOUND_V + SAMPLING_SLACK)
assert V_BAND[1] < EPSILON_BAND[0]  # an ambiguous band separates the two
MAX_EPSILON_RESIDUAL = TOP_ALPHAS_CUMPROD * MAX_SECOND_MOMENT / (1 - TOP_ALPHAS_CUMPROD) ** 2 + SAMPLING_SLACK
# D = ā·M + 1 - ā in [0.95, 1.1]; q's own sampling error at 192 elements is sqrt(2/192) = 0.1
INPUT_ENERGY = (0.5, 2.0)
WHITE_NOISE_HIGH_FREQUENCY = 0.75
MAX_V_HIGH_FREQUENCY = 0.5


class Verdict(NamedTuple):
    declared: str  # what the model is sampled as
    looks_like: str  # what its output says it is: EPSILON, V_PREDICTION or UNDECIDED
    coefficient: float  # c, averaged over the batch
    alphas_cumprod: float  # ā at the judged sigma
    margin: float = math.nan  # distance of c from the ambiguous band (> 0 when decided by c)
    reason: str = ""  # why UNDECIDED, or "" when decided

    @property
    def mismatch(self) -> bool:
        """A confident verdict that contradicts the declared class (UNDECIDED never is one)."""
        return self.looks_like not in (self.declared, UNDECIDED)


def judges(alphas_cumprod: float) -> bool:
    """True if a call at this ā is close enough to the top of the schedule to be judged."""
    return 0.0 <= float(alphas_cumprod) <= TOP_ALPHAS_CUMPROD


def flatten_samples(tensor: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    return tensor.detach().reshape(tensor.shape[0], -1).to(dtype)


def noise_coefficient(output: torch.Tensor, network_input: torch.Tensor) -> torch.Tensor:
    """c = <out, z>/<z, z> per sample (dim 0), in float32 at least; a zero input gives 0."""
    dtype = torch.promote_types(output.dtype, torch.float32)
    out, z = flatten_samples(output, dtype), flatten_samples(network_input, dtype)
    return (out * z).sum(1) / (z * z).sum(1).clamp_min(torch.finfo(dtype).tiny)


def high_pass(x: torch.Tensor) -> torch.Tensor:
    """x minus its 2x2-block mean over the last two (spatial) dims, cropped to even sizes."""
    height, width = x.shape[-2] // 2 * 2, x.shape[-1] // 2 * 2
    x = x[..., :height, :width]
    blocks = x.reshape(*x.shape[:-2], height // 2, 2, width // 2, 2).mean(dim=(-3, -1), keepdim=True)
    return (x.reshape(*x.shape[:-2], height // 2, 2, width // 2, 2) - blocks).reshape(x.shape)


def has_spatial_layout(x: torch.Tensor) -> bool:
    return x.ndim >= 4 and x.shape[-1] >= 2 and x.shape[-2] >= 2


def high_frequency_fraction(x: torch.Tensor) -> torch.Tensor:
    """Per sample, the share of |x|² above its 2x2-block mean: 3/4 for white noise in expectation
    (3 of the 4 orthogonal directions of each block), near 0 for smooth images."""
    x = x.detach().to(torch.promote_types(x.dtype, torch.float32))
    high = flatten_samples(high_pass(x), x.dtype)
    cropped = flatten_samples(x[..., : x.shape[-2] // 2 * 2, : x.shape[-1] // 2 * 2], x.dtype)
    return (high * high).sum(1) / (cropped * cropped).sum(1).clamp_min(torch.finfo(x.dtype).tiny)


def _inside(value: float, band: tuple[float, float]) -> float:
    """How far inside the band a value lies (the verdict's margin)."""
    return min(value - band[0], band[1] - value)


def _undecided(declared, coefficient, alphas_cumprod, reason) -> Verdict:
    return Verdict(declared, UNDECIDED, coefficient, float(alphas_cumprod), math.nan, reason)


def judge(declared: str, output: torch.Tensor, network_input: torch.Tensor, alphas_cumprod: float) -> Verdict:
    """What the output looks like at ā (judges(ā) must hold): EPSILON, V_PREDICTION or UNDECIDED."""
    if declared not in (EPSILON, V_PREDICTION):
        raise ValueError(f"input 'declared' = {declared!r} is not allowed; expected {EPSILON} or {V_PREDICTION}")
    dtype = torch.promote_types(output.dtype, torch.float32)
    per_sample = noise_coefficient(output, network_input)
    coefficient = float(per_sample.mean())
    z, out = network_input.detach().to(dtype), output.detach().to(dtype)
    energy = float(flatten_samples(z, dtype).square().mean())
    if not INPUT_ENERGY[0] <= energy <= INPUT_ENERGY[1]:
        return _undecided(declared, coefficient, alphas_cumprod,
                          f"the network's input has mean square {energy:.3g}, outside {INPUT_ENERGY} where "
                          "the derivation holds (a latent far from the model's scale)")
    residual = out - per_sample.reshape(-1, *([1] * (out.ndim - 1))) * z
    if EPSILON_BAND[0] <= coefficient <= EPSILON_BAND[1]:
        ratio = float((flatten_samples(residual, dtype).square().sum(1) / flatten_samples(z, dtype).square().sum(1)).mean())
        if ratio > MAX_EPSILON_RESIDUAL:
            return _undecided(declared, coefficient, alphas_cumprod,
                              f"c = {coefficient:.2f} as for epsilon, but the output differs from the input "
                              f"by {ratio:.2f} of its energy (an epsilon network: at most {MAX_EPSILON_RESIDUAL:.2f})")
        return Verdict(declared, EPSILON, coefficient, float(alphas_cumprod), _inside(coefficient, EPSILON_BAND), "")
    if V_BAND[0] <= coefficient <= V_BAND[1]:
        if has_spatial_layout(residual):
            high = float(high_frequency_fraction(residual).mean())
            if high > MAX_V_HIGH_FREQUENCY:
                return _undecided(declared, coefficient, alphas_cumprod,
                                  f"c = {coefficient:.2f} as for v, but the output is as rough as noise ({high:.2f} of "
                                  f"its energy above the 2x2 mean; white noise {WHITE_NOISE_HIGH_FREQUENCY}, a v "
                                  f"network's posterior mean at most {MAX_V_HIGH_FREQUENCY}): not a trained network?")
        return Verdict(declared, V_PREDICTION, coefficient, float(alphas_cumprod), _inside(coefficient, V_BAND), "")
    return _undecided(declared, coefficient, alphas_cumprod,
                      f"c = {coefficient:.2f} lies in neither the v band {V_BAND[0]:.2f}..{V_BAND[1]:.2f} nor the "
                      f"epsilon band {EPSILON_BAND[0]:.2f}..{EPSILON_BAND[1]:.2f}")
