"""Every sampler of the running host's list against zsnr's first-step table
(samplers/sampler_families.py), measured from what its step from the top of a schedule does.

One step from sigma_0 to sigma_1, same initial noise, two seeds: the two results differ only by
the fresh noise the step injects, so std(difference)/(sqrt(2)·sigma_1) is the share of sigma_1
that is fresh noise, min(1, eta)·s_noise in the ancestral limit. On the host's own zsnr clamp
(sigma_0 ≈ 4518.76) that share is the host's behaviour; on an exact model the pack's wrapper takes
the step (sigma_0 → ∞). Both must agree, and a sampler that injects noise must be in the table,
so a future host's new SDE sampler fails here, not in a user's image.
"""
from __future__ import annotations

import inspect
import logging
import math

import pytest
import torch
from zsnr_host_helpers import condition, host_zsnr_clamp, reference, zero_snr

pytestmark = pytest.mark.host

SIGMA_1 = 30.0  # where the reference model's x0 barely responds to the injected noise
SHARE_TOLERANCE = 0.08  # 4 × 3 × 32 × 32 values: the std estimate alone is good to ~2 %


def fresh_share(host, model, sampler, sigma_0: float, seeds=(1, 2)) -> float:
    import comfy.sample

    torch.manual_seed(0)
    noise = torch.randn(4, 3, 32, 32)
    latent = torch.zeros_like(noise)
    sigmas = torch.tensor([sigma_0, SIGMA_1])
    positive = condition(host)
    results = [comfy.sample.sample_custom(model, noise, 1.0, sampler, sigmas, positive, positive, latent,
                                          disable_pbar=True, seed=seed) for seed in seeds]
    return float((results[0] - results[1]).std() / (math.sqrt(2) * SIGMA_1))


@pytest.fixture(scope="module")
def models(host):
    clamp = host_zsnr_clamp(reference(host, "scaled_linear"))
    exact = zero_snr(host, reference(host, "scaled_linear"))
    return clamp, exact


def test_first_step_noise_matches_every_host_sampler(host, models):
    """One test over the host's whole list (it is only known once the host is imported), so the
    report names every sampler that disagrees."""
    import comfy.samplers

    families = host.pack.samplers.sampler_families
    wrapper = host.pack.nodes.zsnr_sampling
    clamp, exact = models
    clamp_top = float(clamp.get_model_object("model_sampling").sigma_max)
    sentinel = float(exact.get_model_object("model_sampling").zsnr_terminal_sigma)
    problems, checked = [], 0
    for name in comfy.samplers.SAMPLER_NAMES:
        sampler = comfy.samplers.sampler_object(name)
        function = wrapper._sampler_function_name(sampler)
        host_share = fresh_share(host, clamp, sampler, clamp_top)
        table = families.first_step_noise(function, getattr(sampler, "extra_options", {}))
        expected = 0.0 if table is None else min(1.0, table[0]) * table[1]
        exact_share = fresh_share(host, exact, sampler, sentinel)
        checked += 1
        if host_share > 0 and table is None:
            problems.append(f"{name} ({function}) injects noise on its first step (share {host_share:.3f}) but "
                            "samplers/sampler_families.py does not know it")
        elif abs(host_share - expected) > SHARE_TOLERANCE:
            problems.append(f"{name} ({function}): the host injects {host_share:.3f} of sigma_1, the table says {expected}")
        elif expected == 0 and exact_share != 0.0:
            problems.append(f"{name}: the exact first step depends on the seed ({exact_share:.3g}); it must be an ODE step")
        elif abs(exact_share - expected) > SHARE_TOLERANCE:
            problems.append(f"{name}: the exact first step injects {exact_share:.3f} of sigma_1, expected {expected}")
    assert checked >= 40, "the host's sampler list looks truncated"
    assert not problems, "\n".join(problems)


def test_lcm_s_noise_is_honoured_where_the_host_takes_it(host, models):
    import comfy.k_diffusion.sampling as k_sampling
    import comfy.samplers

    if "s_noise" not in inspect.signature(k_sampling.sample_lcm).parameters:
        pytest.skip("this host's sample_lcm takes no s_noise (it was added after ComfyUI 0.3.75)")
    clamp, exact = models
    sampler = comfy.samplers.KSAMPLER(k_sampling.sample_lcm, extra_options={"s_noise": 0.5})
    host_share = fresh_share(host, clamp, sampler, float(clamp.get_model_object("model_sampling").sigma_max))
    sentinel = float(exact.get_model_object("model_sampling").zsnr_terminal_sigma)
    assert host_share == pytest.approx(0.5, abs=SHARE_TOLERANCE)
    assert fresh_share(host, exact, sampler, sentinel) == pytest.approx(0.5, abs=SHARE_TOLERANCE)


def test_an_unknown_sampler_takes_the_ode_limit_and_says_so_once(host, models, caplog):
    import comfy.k_diffusion.sampling as k_sampling
    import comfy.samplers

    def sample_from_a_future_host(model, x, sigmas, **kwargs):
        return k_sampling.sample_euler(model, x, sigmas, **kwargs)

    _, exact = models
    sentinel = float(exact.get_model_object("model_sampling").zsnr_terminal_sigma)
    sampler = comfy.samplers.KSAMPLER(sample_from_a_future_host)
    with caplog.at_level(logging.WARNING, logger="zsnr"):
        share = fresh_share(host, exact, sampler, sentinel, seeds=(1, 2))
        fresh_share(host, exact, sampler, sentinel, seeds=(3, 4))
    assert share == 0.0
    warnings = [r for r in caplog.records if "sample_from_a_future_host" in r.getMessage()]
    assert len(warnings) == 1 and "eta 0" in warnings[0].getMessage()
