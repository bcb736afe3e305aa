"""Every sampler of the running host's list against zsnr's first-step table
(samplers/sampler_families.py): does its own first step from the SNR-0 sentinel equal its
sigma_0 → ∞ limit, measured, and does the pack do what the table says?

The host's sampler runs on the exact model with zsnr's first-step wrapper removed, from sigma_0 =
the sentinel, 1e5 and 1e6 (float64, same noise and noise draws; the model's x0 at every sigma_0 ≥
the sentinel is the same -v, so only the sampler's arithmetic changes). x_1 is the sample the
sampler evaluates at sigma_1 last before it moves below sigma_1 (Euler: its step's result; Heun:
the corrected one; UniPC: the predictor). SENTINEL samplers must already be at the limit (its
value at 1e6); FIRST_ORDER and OWN_NODES samplers must not be (else the table is needlessly
replacing or excusing them); a sampler the table does not know fails here, not in a user's image.
"""
from __future__ import annotations

import functools
import inspect
import logging

import pytest
import torch
from zsnr_host_helpers import condition, reference, zero_snr

pytestmark = pytest.mark.host

ODE_TOLERANCE = 1e-3  # relative; the residual of an ODE step is O(|x0| / sigma_0), ~1e-4 here
LARGE_SIGMAS = (1e5, 1e6)
# Some host samplers mix float32 values of their own with the sample and fail in float64
# (0.3.75's comfy/extra_samplers/uni_pc.py: tensordot of two dtypes; 0.33.0's seeds_2 family:
# torch.lerp of its float32 log-SNR), and 0.33.0 samples in float32 whatever the noise's dtype:
# those are measured in float32, where sigma_0 must stay below ~7e4: above it sigma_0² - sigma_1²
# rounds to sigma_0², get_ancestral_step returns sigma_down = 0 and the ancestral samplers take
# their final-step shortcut x = denoised (upstream comfy/k_diffusion/sampling.py), and the
# cancellation in x_0 = sigma_0·noise (~6e-8·sigma_0/sigma_1 relative) grows past 1e-4.
FLOAT32_SIGMAS = (1.5e4, 3e4)


class SequenceNoise:
    """The same standard normal draws in the same order whatever the sigmas (a Brownian tree's
    draws depend on the interval it spans, which changes with sigma_0)."""

    def __init__(self, shape, dtype):
        self.generator, self.shape, self.dtype = torch.Generator().manual_seed(7), shape, dtype

    def __call__(self, sigma=None, sigma_next=None):
        return torch.randn(self.shape, generator=self.generator, dtype=torch.float64).to(self.dtype)


@pytest.fixture(scope="module")
def exact_models(host):
    """(the exact model, the same without zsnr's first-step wrapper: the host's own sampler path)."""
    import comfy.patcher_extension

    exact = zero_snr(host, reference(host, "scaled_linear"))
    bare = exact.clone()
    bare.remove_wrappers_with_key(comfy.patcher_extension.WrappersMP.SAMPLER_SAMPLE,
                                  host.pack.nodes.zsnr_sampling.WRAPPER_KEY)
    return exact, bare


def first_step_sample(host, model, sampler_name, sigma_0, dtype, sigmas_after):
    """x_1 (see the module docstring) and the final sample of one sampling from sigma_0."""
    import comfy.sample
    import comfy.samplers

    sampler = comfy.samplers.sampler_object(sampler_name)
    noise = torch.randn(2, 3, 16, 16, generator=torch.Generator().manual_seed(0), dtype=torch.float64).to(dtype)
    function = host.pack.samplers.sampler_families.unwrap_sampler_function(sampler.sampler_function)[0]
    if "noise_sampler" in inspect.signature(function).parameters:
        options = {**sampler.extra_options, "noise_sampler": SequenceNoise(noise.shape, dtype)}
        sampler = comfy.samplers.KSAMPLER(sampler.sampler_function, options, sampler.inpaint_options)
    calls = []

    def record(apply_model, args):
        calls.append((float(args["timestep"].reshape(-1)[0]), args["input"].detach().clone()))
        return apply_model(args["input"], args["timestep"], **args["c"])

    probed = model.clone()
    probed.set_model_unet_function_wrapper(record)
    sigmas = torch.cat([torch.tensor([sigma_0], dtype=torch.float64), sigmas_after]).to(dtype)
    sigma_1 = float(sigmas[1])
    comfy.sample.sample_custom(probed, noise, 1.0, sampler, sigmas, condition(host), condition(host),
                               torch.zeros_like(noise), disable_pbar=True, seed=5)
    x_1 = None
    # the next schedule sigma is far below sigma_1; dpmpp_2s_ancestral's midpoint sqrt(sigma_0·sigma_down)
    # tends to sigma_1 but lands a little off it in float32, so "below sigma_1" means below 0.9·sigma_1
    for sigma, sample in calls:
        if sigma < 0.9 * sigma_1:
            break
        if abs(sigma - sigma_1) <= 1e-4 * sigma_1:
            x_1 = sample.double()
    return x_1, calls[0][1].dtype


def first_steps(host, model, name, sentinel, schedule):
    """x_1 from the sentinel and from the larger sigma_0 that the precision the host samples in allows."""
    try:
        at_sentinel, sampled_in = first_step_sample(host, model, name, sentinel, torch.float64, schedule)
    except RuntimeError as error:
        if "dtype" not in str(error):
            raise
        at_sentinel, sampled_in = first_step_sample(host, model, name, sentinel, torch.float32, schedule)
    dtype, large = (torch.float64, LARGE_SIGMAS) if sampled_in == torch.float64 else (torch.float32, FLOAT32_SIGMAS)
    if dtype == torch.float32:
        at_sentinel = first_step_sample(host, model, name, sentinel, dtype, schedule)[0]
    return at_sentinel, [first_step_sample(host, model, name, sigma, dtype, schedule)[0] for sigma in large]


def relative(a, b) -> float:
    return float((a - b).norm() / b.norm())


def test_every_sampler_of_the_host_is_in_the_table(host):
    import comfy.samplers

    identify = host.pack.nodes.zsnr_sampling.identify_sampler
    unknown = [f"{name} ({identify(comfy.samplers.sampler_object(name)).name})"
               for name in comfy.samplers.SAMPLER_NAMES if identify(comfy.samplers.sampler_object(name)).route is None]
    assert len(comfy.samplers.SAMPLER_NAMES) >= 40, "the host's sampler list looks truncated"
    assert not unknown, f"classify these in samplers/sampler_families.py: {unknown}"


def test_first_step_from_the_sentinel_is_the_limit_where_the_table_says_so(host, exact_models):
    """One test over the host's whole list, so the report names every sampler that disagrees."""
    import comfy.samplers

    families = host.pack.samplers.sampler_families
    exact, bare = exact_models
    model_sampling = exact.get_model_object("model_sampling")
    sentinel = float(model_sampling.zsnr_terminal_sigma)
    schedule = comfy.samplers.calculate_sigmas(model_sampling, "trailing", 10).double()[1:]
    sigma_1 = float(schedule[0])
    problems, report = [], []
    for name in comfy.samplers.SAMPLER_NAMES:
        identity = host.pack.nodes.zsnr_sampling.identify_sampler(comfy.samplers.sampler_object(name))
        at_sentinel, at_large = first_steps(host, bare, name, sentinel, schedule)
        noise_injected = (families.first_step_noise(identity.name, identity.options) or (0.0, 0.0))[0] > 0
        # what is left of the initial noise at sigma_1 after an SDE/ancestral step: exp(-h) = sigma_1/sigma_0
        tolerance = max(ODE_TOLERANCE, 1.5 * sigma_1 / sentinel) if noise_injected else ODE_TOLERANCE
        if at_sentinel is None or at_large[-1] is None:
            distance = float("inf")  # the sampler never evaluates at sigma_1: its own time grid
        else:
            distance = relative(at_sentinel, at_large[-1])
        report.append(f"{name}: {identity.route} {distance:.2e} (tolerance {tolerance:.1e})")
        if identity.route == families.SENTINEL and not distance <= tolerance:
            problems.append(f"{name}: the host's first step from the sentinel is {distance:.2e} from its limit "
                            f"(> {tolerance:.1e}); the table says SENTINEL")
        elif identity.route in (families.FIRST_ORDER, families.OWN_NODES) and distance <= tolerance:
            problems.append(f"{name}: the host's first step from the sentinel is already at its limit "
                            f"({distance:.2e}); the table says {identity.route}")
    print("\n".join(report))
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("name", ["euler", "dpmpp_2m", "uni_pc", "dpmpp_2s_ancestral", "dpmpp_2m_sde", "dpm_fast",
                                  "dpm_2"])
def test_the_pack_leaves_the_first_step_to_the_host_where_it_has_a_limit(host, exact_models, name):
    """Same bits with and without the wrapper: the host's own method runs from the sentinel."""
    import comfy.samplers

    exact, bare = exact_models
    model_sampling = exact.get_model_object("model_sampling")
    sigmas = comfy.samplers.calculate_sigmas(model_sampling, "trailing", 6)
    noise = torch.randn(2, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    results = [guided_sample(host, model, comfy.samplers.sampler_object(name), sigmas, noise) for model in (exact, bare)]
    torch.testing.assert_close(results[0], results[1], rtol=0, atol=0)


def guided_sample(host, model, sampler, sigmas, noise):
    import comfy.samplers

    guider = comfy.samplers.CFGGuider(model)
    guider.set_conds(condition(host), condition(host))
    guider.set_cfg(1.0)
    return guider.sample(noise, torch.zeros_like(noise), sampler, sigmas, seed=3, disable_pbar=True)


@pytest.mark.parametrize("name", ["heun"])
def test_samplers_without_a_limit_take_the_first_order_step(host, exact_models, name):
    """heun from the sentinel: the pack's first step is x0(SNR 0) + sigma_1·noise
    (samplers/first_step.py, the DDIM/Euler limit), then the host's sampler continues."""
    import comfy.samplers

    exact, _ = exact_models
    model_sampling = exact.get_model_object("model_sampling")
    sigmas = comfy.samplers.calculate_sigmas(model_sampling, "trailing", 6)
    noise = torch.randn(2, 3, 16, 16, generator=torch.Generator().manual_seed(2))
    seen = []
    sample = guided_sample(host, exact, comfy.samplers.sampler_object(name), sigmas[:2], noise)
    euler = guided_sample(host, exact, comfy.samplers.sampler_object("euler"), sigmas[:2], noise)
    seen.append(sample)
    # one step to sigma_1: the first-order step, the same as Euler's step from the sentinel up to
    # Euler's O(|x0|/sigma_0) residual; far from the host's own heun step
    assert relative(sample.double(), euler.double()) < ODE_TOLERANCE
    _, bare = exact_models
    host_step = guided_sample(host, bare, comfy.samplers.sampler_object(name), sigmas[:2], noise)
    assert relative(host_step.double(), sample.double()) > 10 * ODE_TOLERANCE


def test_an_unknown_sampler_runs_from_the_sentinel_and_is_named_once(host, exact_models, caplog):
    import comfy.k_diffusion.sampling as k_sampling
    import comfy.samplers

    def sample_from_a_future_host(model, x, sigmas, **kwargs):
        return k_sampling.sample_heun(model, x, sigmas, **kwargs)

    exact, bare = exact_models
    sigmas = comfy.samplers.calculate_sigmas(exact.get_model_object("model_sampling"), "trailing", 4)
    noise = torch.randn(2, 3, 16, 16, generator=torch.Generator().manual_seed(4))
    sampler = comfy.samplers.KSAMPLER(sample_from_a_future_host)
    with caplog.at_level(logging.WARNING, logger="zsnr"):
        ours = guided_sample(host, exact, sampler, sigmas, noise)
        guided_sample(host, exact, sampler, sigmas, noise)
    torch.testing.assert_close(ours, guided_sample(host, bare, sampler, sigmas, noise), rtol=0, atol=0)
    warnings = [r for r in caplog.records if "sample_from_a_future_host" in r.getMessage()]
    assert len(warnings) == 1 and "sentinel" in warnings[0].getMessage()


def test_wrappers_are_seen_through_and_never_preempted(host, exact_models):
    """A preset (functools.partial) of heun is heun: the pack takes its first step. A wrapper with
    code of its own (functools.wraps, as bleh's and Detail Daemon's sampler wrappers do) is named
    as heun, but its code runs first: the pack leaves the step to it."""
    import comfy.k_diffusion.sampling as k_sampling
    import comfy.samplers

    identify = host.pack.nodes.zsnr_sampling.identify_sampler
    preset = comfy.samplers.KSAMPLER(functools.partial(functools.partial(k_sampling.sample_heun, s_noise=1.0)))

    @functools.wraps(k_sampling.sample_heun)
    def detail_wrapper(model, x, sigmas, **kwargs):
        return k_sampling.sample_heun(model, x, sigmas, **kwargs)

    wrapped = comfy.samplers.KSAMPLER(detail_wrapper)
    assert identify(preset).name == "sample_heun" and not identify(preset).wrapped
    assert identify(preset).options == {"s_noise": 1.0}
    assert identify(wrapped).name == "sample_heun" and identify(wrapped).wrapped
    assert not identify(comfy.samplers.sampler_object("heun")).wrapped  # @torch.no_grad() is no pack's code
    exact, bare = exact_models
    sigmas = comfy.samplers.calculate_sigmas(exact.get_model_object("model_sampling"), "trailing", 4)
    noise = torch.randn(2, 3, 16, 16, generator=torch.Generator().manual_seed(6))
    torch.testing.assert_close(guided_sample(host, exact, wrapped, sigmas, noise),
                               guided_sample(host, bare, wrapped, sigmas, noise), rtol=0, atol=0)
    heun = guided_sample(host, exact, comfy.samplers.sampler_object("heun"), sigmas, noise)
    torch.testing.assert_close(guided_sample(host, exact, preset, sigmas, noise), heun, rtol=0, atol=0)
