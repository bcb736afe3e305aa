"""The first-step table's routes, option semantics and wrapper unwrapping (samplers/sampler_families.py); what each host sampler
really does is measured in tests/host/test_sampler_families_host.py."""
from __future__ import annotations

import functools

import pytest
from zsnr_core.samplers.sampler_families import (
    FAMILIES,
    FIRST_ORDER,
    OWN_NODES,
    SENTINEL,
    first_step_noise,
    first_step_route,
    unwrap_sampler_function,
)


@pytest.mark.parametrize("name, options, expected", [
    ("sample_euler", {}, (0.0, 1.0)),
    ("sample_euler_ancestral", {}, (1.0, 1.0)),  # k-diffusion's default eta
    ("sample_euler_ancestral", {"eta": 0.5, "s_noise": 0.8}, (0.5, 0.8)),
    ("sample_euler_ancestral", {"eta": 0.0}, (0.0, 1.0)),
    # an SDE step from sigma = inf keeps none of the old noise for any eta > 0 ...
    ("sample_dpmpp_2m_sde", {"eta": 0.3}, (1.0, 1.0)),
    ("sample_exp_heun_2_x0_sde", {}, (1.0, 1.0)),
    # ... and is its ODE for eta = 0 or s_noise = 0
    ("sample_dpmpp_2m_sde", {"eta": 0.0}, (0.0, 1.0)),
    ("sample_er_sde", {"s_noise": 0.0}, (0.0, 0.0)),
    ("sample_ddpm", {"s_noise": 0.5}, (1.0, 1.0)),  # DDPM takes no s_noise
    ("sample_lcm", {"s_noise": 0.5}, (1.0, 0.5)),
])
def test_options_give_the_first_step_eta(name, options, expected):
    assert first_step_noise(name, options) == expected


def test_unknown_sampler_is_none_not_a_guess():
    assert "sample_from_a_future_host" not in FAMILIES
    assert first_step_noise("sample_from_a_future_host", {"eta": 1.0}) is None


def test_routes_cover_the_three_answers():
    assert first_step_route("sample_euler") == SENTINEL
    assert first_step_route("dpm_fast_function") == OWN_NODES
    assert first_step_route("sample_heun") == FIRST_ORDER
    assert first_step_route("sample_from_a_future_host") is None


def sample_heun(model, x, sigmas, s_noise=1.0):
    return x


def test_partials_are_presets_and_wraps_is_another_packs_code():
    preset = functools.partial(functools.partial(sample_heun, s_noise=0.5), s_noise=0.8)
    assert unwrap_sampler_function(preset) == (sample_heun, {"s_noise": 0.8}, False)

    @functools.wraps(sample_heun)
    def wrapper(*args, **kwargs):
        return sample_heun(*args, **kwargs)

    assert unwrap_sampler_function(functools.partial(wrapper, s_noise=0.5)) == (sample_heun, {"s_noise": 0.5}, True)
    wrapper.__wrapped__ = wrapper  # a cycle must end, not hang
    assert unwrap_sampler_function(wrapper)[2] is True
