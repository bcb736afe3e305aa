"""Which kind of first step each k-diffusion sampler takes from SNR 0 (sigma → ∞).

The limit of a sampler's step as sigma_0 → ∞ depends only on how it injects noise:
- deterministic (Euler, Heun, DPM-Solver++, UniPC, LMS, DEIS, …): the DDIM/Euler limit
  x_1 = x0_hat + sigma_1·eps, with eps the initial noise itself (paper §6, eq. 12 of DDIM with eta 0);
- ancestral (k-diffusion get_ancestral_step with eta): sigma_up → eta·sigma_1,
  sigma_down → sigma_1·sqrt(1 - eta²);
- renoise (DPM-Solver++ SDE, SEEDS, ER-SDE, LCM): the SDE step's carry-over factor
  (sigma_1/sigma_0)·exp(-h·eta) vanishes for any eta > 0, so x_1 = x0_hat + sigma_1·s_noise·z.
DDPM's posterior at alphā_t = 0 has variance 1 - alphā_{t-1}, which is ancestral with eta = 1.
The SA-Solver's default tau is 0 above 80 % of the schedule, so its first step is deterministic.
"""
from __future__ import annotations

DETERMINISTIC, ANCESTRAL, RENOISE = "deterministic", "ancestral", "renoise"

_ANCESTRAL = {
    "sample_euler_ancestral", "sample_euler_ancestral_cfg_pp", "sample_dpm_2_ancestral",
    "sample_dpmpp_2s_ancestral", "sample_dpmpp_2s_ancestral_cfg_pp",
    "sample_res_multistep_ancestral", "sample_res_multistep_ancestral_cfg_pp",
}
_ALWAYS_ETA_ONE = {"sample_ddpm"}
_RENOISE = {
    "sample_dpmpp_sde", "sample_dpmpp_sde_gpu", "sample_dpmpp_2m_sde", "sample_dpmpp_2m_sde_gpu",
    "sample_dpmpp_2m_sde_heun", "sample_dpmpp_2m_sde_heun_gpu", "sample_dpmpp_3m_sde",
    "sample_dpmpp_3m_sde_gpu", "sample_seeds_2", "sample_seeds_3", "sample_er_sde",
}
_ALWAYS_RENOISE = {"sample_lcm"}


def first_step_kind(sampler_function_name: str, options: dict) -> tuple[str, float, float]:
    """(kind, eta, s_noise) of the first step from SNR 0 for a k-diffusion sampler function.

    `options` are the sampler's extra options (eta, s_noise) as the host passes them; unknown
    samplers are treated as deterministic, the limit every ODE solver shares.
    """
    s_noise = float(options.get("s_noise", 1.0))
    if sampler_function_name in _ALWAYS_ETA_ONE:
        return ANCESTRAL, 1.0, 1.0
    if sampler_function_name in _ANCESTRAL:
        eta = float(options.get("eta", 1.0))
        return (ANCESTRAL, eta, s_noise) if eta > 0 else (DETERMINISTIC, 0.0, s_noise)
    if sampler_function_name in _ALWAYS_RENOISE:
        return RENOISE, 1.0, 1.0
    if sampler_function_name in _RENOISE:
        eta = float(options.get("eta", 1.0))
        return (RENOISE, eta, s_noise) if eta > 0 and s_noise > 0 else (DETERMINISTIC, 0.0, s_noise)
    return DETERMINISTIC, 0.0, s_noise
