"""Spacings uniform in log-SNR on the SD family's zero-terminal-SNR schedule: logsnr_uniform, and
logsnr_resolution, its form for images of another size than the one the schedule was made for.

Both start at the terminal timestep T-1 (SNR 0, taken exactly by ZeroTerminalSNR), then place S-1
integer timesteps at equal steps of log-SNR over a window that ends at t = 0. logsnr_uniform's
window starts at T-2, the lowest finite trained SNR; logsnr_resolution moves that start by the
shift of the SNR of the image mean (resolution_log_snr_shift). Registered in
spacing.SPACING_RULES with the registry's one signature (steps, num_train_timesteps,
steps_offset=0, latent_size=None).
"""

from __future__ import annotations

import math

import torch

from .betas import alphas_cumprod_from_betas, make_betas, rescale_alphas_cumprod_zero_terminal_snr
from .conversions import sigma_from_alphas_cumprod

# The latent size (height, width in latent positions) the SD family's scaled_linear schedule was
# made for: SD 1.x samples 512x512 pixels as a 64x64 latent (Rombach et al. 2022, "High-Resolution
# Image Synthesis with Latent Diffusion Models"). simple diffusion (Hoogeboom et al. 2023) also
# takes 64x64 as the size its schedule is right for and shifts from there.
REFERENCE_LATENT_SIZE = (64, 64)


def sd_zero_snr_sigma_table(num_train_timesteps: int = 1000) -> torch.Tensor:
    """sigma per timestep of the SD family's schedule (scaled_linear, shared by SD 1.x, 2.x and XL)
    rescaled to zero terminal SNR (Algorithm 1); the top entry is inf (alphā_T = 0)."""
    betas = make_betas("scaled_linear", num_train_timesteps)
    return sigma_from_alphas_cumprod(rescale_alphas_cumprod_zero_terminal_snr(alphas_cumprod_from_betas(betas)))


def resolution_log_snr_shift(latent_size=None, reference_size=REFERENCE_LATENT_SIZE) -> float:
    """log(N/N_ref), N = height·width latent positions: how far down (in log-SNR) an image of N
    positions decides its mean, relative to an image of N_ref positions.

    Derivation: in x = x0 + sigma·eps (pixel SNR = 1/sigma²) the mean over N positions is
    mean(x0) + sigma·mean(eps), and the noise of that mean has variance sigma²/N (independent
    eps per position) while the signal mean(x0) stays. So the SNR of the image mean is
    N·Var(mean x0)/sigma², and the pixel log-SNR at which it reaches any fixed value is
    log-SNR* - log N: it moves down by log(N/N_ref) from N_ref to N (simple diffusion, Hoogeboom
    et al. 2023, §3: shift the log-SNR schedule by 2·log(64/d) for a d x d image, the same
    rule with N = d²). Channels are not counted: a model has the same number at every size, so
    they would only rescale N and N_ref alike. None means the reference size (shift 0).
    """
    if latent_size is None:
        return 0.0
    height, width = check_latent_size(latent_size, "latent_size")
    ref_height, ref_width = check_latent_size(reference_size, "reference_size")
    return math.log(height * width) - math.log(ref_height * ref_width)


def check_latent_size(value, name: str = "latent_size") -> tuple[int, int]:
    """(height, width) as positive integers, or a ValueError naming the input."""
    try:
        height, width = (int(v) for v in value)
        if any(isinstance(v, bool) or int(v) != v for v in value):
            raise TypeError
    except (TypeError, ValueError):
        raise ValueError(f"input '{name}' = {value!r} is not allowed; expected (height, width) integers") from None
    if height < 1 or width < 1:
        raise ValueError(f"input '{name}' = {value!r} is not allowed; expected positive height and width")
    return height, width


def logsnr_uniform_timesteps(steps: int, num_train_timesteps: int, steps_offset: int = 0,
                             latent_size=None) -> torch.Tensor:
    """The terminal timestep T-1, then S-1 timesteps uniform in log-SNR from T-2 down to 0, on the
    SD family's zero-terminal-SNR schedule (sd_zero_snr_sigma_table). The same at every latent size.

    Why: with zero terminal SNR the first step starts at SNR 0, where the model can only predict
    the data mean (paper §5.2) and ZeroTerminalSNR takes that step exactly; what decides brightness
    is how the remaining steps resolve the lowest SNRs, where an image's mean is fixed (at a
    sigma that grows with the pixel count). trailing spends one step there, leaving DDIM/Euler
    grey at <= 25 steps; spacing uniformly in log-SNR over the whole finite trained range gives
    every factor of sigma the same number of steps. No timestep falls between T-2 and T-1, where
    interpolating towards alphā_T = 0 means SNR 0 again.

    Like the Table 2 rules this is a rule over integer timesteps, the same for every model (on
    the original SD schedule the first step, T-1 to T-2, is a short one). Integer, because the
    host evaluates the network at the nearest training timestep (0.3.75's
    ModelSamplingDiscrete.timestep rounds): a fractional one would give the network another noise
    level than the sampler's sigma. Each is the nearest integer to the exact log-uniform point;
    where those points lie closer than one timestep (near T-1 for large S), consecutive timesteps.
    """
    return log_uniform_timesteps(steps, num_train_timesteps, low_end_shift=0.0)


def logsnr_resolution_timesteps(steps: int, num_train_timesteps: int, steps_offset: int = 0,
                                latent_size=None) -> torch.Tensor:
    """logsnr_uniform with the window's low-SNR end moved down by log(N/N_ref)
    (resolution_log_snr_shift), its high-SNR end kept at t = 0: T-1, then S-1 timesteps uniform in
    log-SNR over [log-SNR(T-2) - shift, log-SNR(0)].

    The principle: the window is where the image is decided at this size. Its low end is where
    the image mean is still undecided, and that moves with the SNR of the image mean: down by
    log(N/N_ref). Its high end is where a single latent position's detail is decided, which
    depends on the pixel SNR alone, so no shift there: every size ends at the least noisy
    trained timestep (translating the whole window instead, high end included, measured worse
    at 128x128: README.md, "Per image size"). The reference N_ref = 64x64 (REFERENCE_LATENT_SIZE) is the size the
    schedule was made for; there this rule is logsnr_uniform exactly, whose window starts at the
    lowest finite trained SNR, where a 64x64 image's mean has SNR at most 4096·e^-15.4 ≈ 8e-4
    (Var(mean x0) <= 1 for unit-variance latents): undecided.

    Larger images (shift > 0) would start below log-SNR(T-2), where the schedule has no finite
    timestep (between T-2 and T-1 is SNR 0): targets there are taken at T-2, the first step from
    SNR 0 lands on it as in logsnr_uniform, and the other steps are spaced from the shifted start.
    The image mean's SNR at T-2 reaches 1 only at N ≈ e^15.4 ≈ 5e6 positions, so nothing decided
    is skipped below any size this serves. Smaller images (shift < 0) start above T-2.
    latent_size None (the host's KSampler list, which gives a scheduler only the model and the
    step count) means the reference size, i.e. logsnr_uniform.
    """
    return log_uniform_timesteps(steps, num_train_timesteps, low_end_shift=resolution_log_snr_shift(latent_size))


def log_uniform_timesteps(steps: int, num_train_timesteps: int, low_end_shift: float = 0.0) -> torch.Tensor:
    """T-1, then S-1 integer timesteps nearest to the points uniform in log-SNR from
    log-SNR(T-2) - low_end_shift to log-SNR(0); points below log-SNR(T-2) are taken at T-2."""
    terminal = torch.full((1,), float(num_train_timesteps - 1), dtype=torch.float64)
    if steps == 1:
        return terminal
    last = num_train_timesteps - 1
    if last == 1:
        return torch.cat([terminal, torch.zeros(1, dtype=torch.float64)])
    # log-sigma = -log-SNR/2 at t = 0 .. T-2 (finite), increasing in t: uniform in one is uniform in the other
    log_sigma = sd_zero_snr_sigma_table(num_train_timesteps)[:last].log()
    low_end = float(log_sigma[-1]) + 0.5 * low_end_shift  # log-SNR - shift is log-sigma + shift/2
    high_end = float(log_sigma[0])
    if not low_end > high_end:
        raise ValueError(f"input 'latent_size' gives a log-SNR shift of {low_end_shift:.3f}, which moves the "
                         "window's start past its end (log-SNR at t = 0); use a larger latent")
    targets = torch.linspace(low_end, high_end, steps - 1, dtype=torch.float64).clamp(max=float(log_sigma[-1]))
    upper = torch.searchsorted(log_sigma, targets).clamp(1, last - 1)
    lower = upper - 1
    exact = lower + (targets - log_sigma[lower]) / (log_sigma[upper] - log_sigma[lower])
    return torch.cat([terminal, _strictly_decreasing_integers(exact)])


def _strictly_decreasing_integers(points: torch.Tensor) -> torch.Tensor:
    """Round n descending points to integers, each at least one below the previous and at least
    as high as the number of points still to come (so all n fit above 0)."""
    rounded = torch.round(points).tolist()
    count = len(rounded)
    chosen = []
    for index, value in enumerate(rounded):
        ceiling = chosen[-1] - 1 if chosen else value
        chosen.append(max(min(value, ceiling), count - 1 - index))
    return torch.tensor(chosen, dtype=torch.float64)
