"""SNR 0 in one place: the terminal modes, the finite sentinel sigma that stands for alphā = 0 in
the host's sigma table, and the one question "is this sigma SNR 0 for this model".

The host breaks if a sigma is infinite (upstream comfy/samplers.py and comfy/k_diffusion/sampling.py
divide by sigma and interpolate log-sigma), so an exact zero-terminal-SNR model keeps a finite top
entry and treats it as SNR 0 (paper §3.1: alphā_T = 0; §6: x0 = -v there).
"""
from __future__ import annotations

import math

import torch

COMFY_CLAMP = 4.8973451890853435e-08  # ComfyUI's zsnr option: alphā_T, sigma_T ≈ 4518.76
DIFFUSERS_CLAMP = 2.0**-24  # diffusers Euler/DPM/UniPC with rescale_betas_zero_snr: sigma_T = 4096
# terminal mode -> alphā_T after Algorithm 1: exact 0, or the clamp a peer uses instead
TERMINALS = {"exact": 0.0, "clamp_comfy": COMFY_CLAMP, "clamp_diffusers": DIFFUSERS_CLAMP}
SENTINEL_SIGMA = math.sqrt((1 - COMFY_CLAMP) / COMFY_CLAMP)  # sigma of alphā: sqrt((1-alphā)/alphā)
# The host keeps sigmas as float32, so a sentinel sigma arrives rounded by up to ~6e-8 relative.
SENTINEL_RELATIVE_TOLERANCE = 1e-6


def sentinel_sigma(sigmas: torch.Tensor) -> float:
    """The finite sigma that stands for SNR 0 at the top of an exact table.

    The host's own clamp value where it fits (SD-family schedules: 4518.76, so the host's
    schedulers behave exactly as with its zsnr option); schedules whose second-to-last sigma is
    already larger (DDPM linear: 15406) get twice that, keeping the table strictly increasing.
    """
    return max(SENTINEL_SIGMA, 2.0 * float(sigmas[-2]))


def is_snr_zero(sigma, terminal_sigma: float | None):
    """Whether `sigma` (a float or a tensor, elementwise) means SNR 0 on a model whose sentinel is
    `terminal_sigma` (None: a model without exact SNR 0; only sigma = inf is SNR 0 there)."""
    if terminal_sigma is None:
        return sigma == float("inf")
    return sigma >= float(terminal_sigma) * (1 - SENTINEL_RELATIVE_TOLERANCE)


def clamp_fits(rescaled_alphas_cumprod: torch.Tensor, terminal: str) -> bool:
    """Whether a terminal mode keeps the table strictly increasing in sigma: a clamp must stay
    below alphā_{T-2} of the rescaled schedule. DDPM's linear schedule after Algorithm 1 has
    alphā_{T-2} ≈ 4.2e-9, below both clamps, so only exact SNR 0 fits it."""
    return TERMINALS[terminal] == 0.0 or TERMINALS[terminal] < float(rescaled_alphas_cumprod[-2])
