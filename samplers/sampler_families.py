"""Who takes the first step from SNR 0: the host's own sampler from the sentinel, or a first-order step.

An exact model keeps a finite sentinel sigma_0 (schedules/snr_zero.py, the host's own zsnr clamp
value) at which its x0 is exactly -v (paper §6; no division). A sampler's first step from there is
its own method evaluated at sigma_0 = sentinel; the question per sampler is whether that step is
its sigma_0 → ∞ limit. tests/host/test_sampler_families_host.py measures it for every sampler of
the running host's list (sigma_0 = sentinel, 1e5, 1e6, 1e7 in float64) and fails on a sampler this
table does not classify, so a future host's new sampler is classified before a user meets it.

- SENTINEL: the step converges as sigma_0 → ∞ and the sentinel is already at the limit: to 1e-3
  relative for ODE steps (the residual is O(|x0|/sigma_0)), and to the carry-over factor
  exp(-h) = sigma_1/sigma_0 for steps that inject fresh noise (ancestral, SDE: what is left of the
  initial noise at sigma_1; its distribution is the limit's exactly, both being unit Gaussians).
  Multistep history, correctors and CFG++ variants are kept because nothing is replaced.
- OWN_NODES: the sampler places evaluations relative to sigma_0: dpm_fast / dpm_adaptive build
  their time grid from sigma_max (upstream comfy/samplers.py, ksampler), seeds_2 / seeds_3 evaluate
  at sigma_0^(1-r)·sigma_1^r, dpm_2 at its midpoint sqrt(sigma_0·sigma_1). As sigma_0 → ∞ those
  nodes go to SNR 0 as well and their evaluations carry nothing (dpm_2's midpoint term
  (sigma_1 - sigma_0)(x0_hat(∞) - x0_hat(sigma_mid))/sigma_mid even stays finite only if the
  network's x0 converges like 1/sigma), so the "limit" wastes them; the host's own clamp value is
  where they are useful, and the pack runs them from it exactly as the host's zsnr option does (x0
  exact there). For dpm_2 this was measured: the first-order step instead scored W1 0.614 against
  the host's 0.481 at 10 trailing steps (docs/benchmarks.md).
- FIRST_ORDER: no finite limit. A Heun-type correction across the terminal interval multiplies
  (sigma_1 - sigma_0) by a difference of derivatives that does not vanish: heun's
  (d(x̃_1, sigma_1) - d(x_0, sigma_0))/2 ≈ (x0_hat(∞) - x0_hat(sigma_1))/(2·sigma_1) grows the step
  linearly in sigma_0; dpm_2_ancestral's midpoint sqrt(sigma_0·sigma_down) tends to sigma_1 and its
  correction grows the same way (at the sentinel both over-disperse brightness, r ≈ 1.7). These
  are single-step methods, so the pack takes the first step as the
  first-order step of samplers/first_step.py with the sampler's noise (first_step_noise) and hands
  sigma_1 onward to the host's sampler: nothing the sampler carries is lost.
A sampler not in the table (another pack's, a future host's) runs from the sentinel as the host's
own zsnr option would run it: the path that is right for every sampler with a finite limit.
"""
from __future__ import annotations

import functools
import os

SENTINEL, OWN_NODES, FIRST_ORDER = "sentinel", "own_nodes", "first_order"
ODE, ANCESTRAL, SDE, ETA_ONE = "ode", "ancestral", "sde", "eta_one"

# k-diffusion sampler function name (upstream comfy/k_diffusion/sampling.py, comfy/samplers.py,
# comfy/extra_samplers/uni_pc.py) → (who takes the first step, how its options inject noise)
_ODE_SENTINEL = (
    "sample_euler", "sample_euler_cfg_pp", "sample_heunpp2", "sample_exp_heun_2_x0", "sample_lms",
    "sample_dpmpp_2m", "sample_dpmpp_2m_cfg_pp", "sample_ipndm", "sample_ipndm_v", "sample_deis",
    "sample_res_multistep", "sample_res_multistep_cfg_pp", "sample_gradient_estimation",
    "sample_gradient_estimation_cfg_pp", "sample_sa_solver", "sample_sa_solver_pece", "sample_unipc",
    "sample_unipc_bh2", "sample_cfgpp_ud10_ab",
)
_ANCESTRAL_SENTINEL = (
    "sample_euler_ancestral", "sample_euler_ancestral_cfg_pp", "sample_dpmpp_2s_ancestral",
    "sample_dpmpp_2s_ancestral_cfg_pp", "sample_res_multistep_ancestral", "sample_res_multistep_ancestral_cfg_pp",
)
_SDE_SENTINEL = (
    "sample_dpmpp_sde", "sample_dpmpp_sde_gpu", "sample_dpmpp_2m_sde", "sample_dpmpp_2m_sde_gpu",
    "sample_dpmpp_2m_sde_heun", "sample_dpmpp_2m_sde_heun_gpu", "sample_dpmpp_3m_sde", "sample_dpmpp_3m_sde_gpu",
    "sample_er_sde", "sample_exp_heun_2_x0_sde",
)
FAMILIES: dict[str, tuple[str, str]] = {
    **dict.fromkeys(_ODE_SENTINEL, (SENTINEL, ODE)),
    **dict.fromkeys(_ANCESTRAL_SENTINEL, (SENTINEL, ANCESTRAL)),
    **dict.fromkeys(_SDE_SENTINEL, (SENTINEL, SDE)),
    "sample_ddpm": (SENTINEL, ETA_ONE),
    "sample_lcm": (SENTINEL, ETA_ONE),
    "dpm_fast_function": (OWN_NODES, ODE),
    "dpm_adaptive_function": (OWN_NODES, ODE),
    "sample_seeds_2": (OWN_NODES, SDE),
    "sample_seeds_3": (OWN_NODES, SDE),
    "sample_dpm_2": (OWN_NODES, ODE),
    "sample_heun": (FIRST_ORDER, ODE),
    "sample_dpm_2_ancestral": (FIRST_ORDER, ANCESTRAL),
}


def first_step_route(sampler_function_name: str) -> str | None:
    """SENTINEL, OWN_NODES or FIRST_ORDER for a known sampler function; None for an unknown one."""
    known = FAMILIES.get(sampler_function_name)
    return None if known is None else known[0]


def first_step_noise(sampler_function_name: str, options: dict) -> tuple[float, float] | None:
    """(eta, s_noise) of the sigma_0 → ∞ step for a known sampler function (None if unknown), in
    the ancestral form x_1 = x0_hat + sigma_down·noise + sigma_up·s_noise·fresh, sigma_up =
    min(1, eta)·sigma_1 (samplers/first_step.py):
    - ODE: eta 0, the DDIM/Euler limit x0_hat + sigma_1·noise (paper §6; DDIM eq. 12, eta 0);
    - ancestral (k-diffusion get_ancestral_step): the sampler's own eta option;
    - SDE: the carry-over factor (sigma_1/sigma_0)·exp(-h·eta) vanishes for any eta > 0, so all of
      sigma_1 is fresh noise: eta 1 (eta 0 or s_noise 0 make them their ODE: eta 0);
    - DDPM: the posterior at alphā_t = 0 has variance 1 - alphā_{t-1}, ancestral with eta 1;
      LCM: x0_hat + sigma_1·s_noise·z by construction, eta 1.
    `options` are the sampler's extra options as the host passes them (DDPM takes neither eta nor
    s_noise, LCM only s_noise)."""
    known = FAMILIES.get(sampler_function_name)
    if known is None:
        return None
    family = known[1]
    s_noise = float(options.get("s_noise", 1.0))
    if family == ODE:
        return 0.0, s_noise
    if family == ETA_ONE:
        return 1.0, (s_noise if sampler_function_name == "sample_lcm" else 1.0)
    eta = float(options.get("eta", 1.0))
    if family == ANCESTRAL:
        return max(eta, 0.0), s_noise
    return (1.0 if eta > 0 and s_noise > 0 else 0.0), s_noise


def unwrap_sampler_function(function) -> tuple[object, dict, bool]:
    """(innermost function, options bound by partials, wrapped): sees through functools.partial
    chains (a preset: only arguments are bound, the method is the function's own) and through
    `__wrapped__` (functools.wraps). A wrapper is another pack's code running around the function
    (`wrapped` True: the caller must not take the function's first step in its place) unless it is
    torch's own decorator (k-diffusion's samplers are @torch.no_grad(), torch/utils/_contextlib.py)."""
    options: dict = {}
    wrapped = False
    for _ in range(32):  # a cycle of __wrapped__ links must not hang sampling
        if isinstance(function, functools.partial):
            options = {**function.keywords, **options}
            function = function.func
        elif getattr(function, "__wrapped__", None) is not None:
            wrapped = wrapped or not _is_torch_decorator(function)
            function = function.__wrapped__
        else:
            break
    return function, options, wrapped


def _is_torch_decorator(function) -> bool:
    code = getattr(function, "__code__", None)
    return code is not None and f"{os.sep}torch{os.sep}" in code.co_filename
