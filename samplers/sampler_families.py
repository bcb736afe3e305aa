"""The first step each k-diffusion sampler takes from SNR 0 (sigma → ∞), as one number: its eta.

The limit of a sampler's step as sigma_0 → ∞ depends only on how it injects noise, and every
family's limit is the ancestral step of samplers/first_step.py with some eta
(x_1 = x0_hat + sigma_down·noise + sigma_up·s_noise·fresh, sigma_up = min(1, eta)·sigma_1):
- ODE (Euler, Heun, DPM-Solver++, UniPC, LMS, DEIS, …): eta 0, the DDIM/Euler limit
  x_1 = x0_hat + sigma_1·eps with eps the initial noise itself (paper §6; DDIM eq. 12, eta 0);
- ancestral (k-diffusion get_ancestral_step): the sampler's own eta option;
- SDE (DPM-Solver++ SDE, SEEDS, ER-SDE, exponential Heun SDE): the carry-over factor
  (sigma_1/sigma_0)·exp(-h·eta) vanishes for any eta > 0, so all of sigma_1 is fresh noise: eta 1
  (eta 0 or s_noise 0 turn them into their ODE: eta 0);
- DDPM: the posterior at alphā_t = 0 has variance 1 - alphā_{t-1}, ancestral with eta 1;
- LCM: x_1 = x0_hat + sigma_1·s_noise·z by construction: eta 1.
The SA-Solver's default tau is 0 above 80 % of the schedule, so its first step is an ODE step.
tests/host/test_sampler_families_host.py checks every sampler of the running host's list against
what its step from the top of a schedule really does.
"""
from __future__ import annotations

ODE, ANCESTRAL, SDE, ETA_ONE = "ode", "ancestral", "sde", "eta_one"

# k-diffusion sampler function name (upstream comfy/k_diffusion/sampling.py, comfy/samplers.py)
# → how its options give the first step's eta. A name missing here is unknown: see first_step_noise.
FAMILIES: dict[str, str] = {
    **dict.fromkeys((
        "sample_euler", "sample_euler_cfg_pp", "sample_heun", "sample_heunpp2", "sample_exp_heun_2_x0",
        "sample_dpm_2", "sample_lms", "dpm_fast_function", "dpm_adaptive_function", "sample_dpmpp_2m",
        "sample_dpmpp_2m_cfg_pp", "sample_ipndm", "sample_ipndm_v", "sample_deis", "sample_res_multistep",
        "sample_res_multistep_cfg_pp", "sample_gradient_estimation", "sample_gradient_estimation_cfg_pp",
        "sample_sa_solver", "sample_sa_solver_pece", "sample_unipc", "sample_unipc_bh2",
    ), ODE),
    **dict.fromkeys((
        "sample_euler_ancestral", "sample_euler_ancestral_cfg_pp", "sample_dpm_2_ancestral",
        "sample_dpmpp_2s_ancestral", "sample_dpmpp_2s_ancestral_cfg_pp", "sample_res_multistep_ancestral",
        "sample_res_multistep_ancestral_cfg_pp",
    ), ANCESTRAL),
    **dict.fromkeys((
        "sample_dpmpp_sde", "sample_dpmpp_sde_gpu", "sample_dpmpp_2m_sde", "sample_dpmpp_2m_sde_gpu",
        "sample_dpmpp_2m_sde_heun", "sample_dpmpp_2m_sde_heun_gpu", "sample_dpmpp_3m_sde",
        "sample_dpmpp_3m_sde_gpu", "sample_seeds_2", "sample_seeds_3", "sample_er_sde",
        "sample_exp_heun_2_x0_sde",
    ), SDE),
    "sample_ddpm": ETA_ONE,
    "sample_lcm": ETA_ONE,
}


def first_step_noise(sampler_function_name: str, options: dict) -> tuple[float, float] | None:
    """(eta, s_noise) of the first step from SNR 0 for a k-diffusion sampler function, or None for
    a sampler this table does not know (the caller then takes the ODE limit, eta 0, and says so).

    `options` are the sampler's extra options as the host passes them (eta, s_noise; DDPM takes
    neither, LCM only s_noise).
    """
    family = FAMILIES.get(sampler_function_name)
    if family is None:
        return None
    s_noise = float(options.get("s_noise", 1.0))
    if family == ODE:
        return 0.0, s_noise
    if family == ETA_ONE:
        return 1.0, (s_noise if sampler_function_name == "sample_lcm" else 1.0)
    eta = float(options.get("eta", 1.0))
    if family == ANCESTRAL:
        return max(eta, 0.0), s_noise
    return (1.0 if eta > 0 and s_noise > 0 else 0.0), s_noise
