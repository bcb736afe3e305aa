"""The host side of exact zero terminal SNR: a ModelSampling that marks SNR 0, and a sampler
wrapper that decides who takes the first step from it, for every sampler the host runs.

Why this shape: the host breaks in a dozen places if a sigma is infinite (timestep(inf), to_d's
division in upstream comfy/k_diffusion/sampling.py, noise_scaling, percent_to_sigma), so the host
only ever sees finite sigmas. The top entry of an exact model's sigma table is a finite
sentinel, the host's own zsnr clamp value (sigma ≈ 4518.76), so its schedulers (karras,
exponential, simple, …) behave exactly as with its own zsnr option. Inside, the sentinel means
alphā = 0: the model's x0 there is exactly -v (paper §6). The host's own sampler then steps from
the sentinel, which for every sampler with a finite sigma_0 → ∞ limit is that limit to the measured
tolerance (samplers/sampler_families.py); only where no finite limit exists (Heun-type corrections
across the terminal interval) does the SAMPLER_SAMPLE wrapper take the first step itself, the
first-order step of samplers/first_step.py, and hand the rest of the schedule to the host's sampler.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

import comfy.model_sampling
import comfy.patcher_extension
import comfy.samplers
import torch

from ..samplers.first_step import ancestral_step_from_snr_zero
from ..samplers.prediction_check import judge, judges
from ..samplers.sampler_families import (
    FIRST_ORDER,
    first_step_noise,
    first_step_route,
    unwrap_sampler_function,
)
from ..schedules.betas import clamp_terminal, rescale_alphas_cumprod_zero_terminal_snr
from ..schedules.conversions import alphas_cumprod_from_sigma, sigma_from_alphas_cumprod
from ..schedules.snr_zero import TERMINALS, is_snr_zero, sentinel_sigma
from . import prediction_check
from .host_sampling import EPSILON, V_PREDICTION, prediction_kind, standard_prediction_class
from .replaced_sampling import report_replaced_sampling

WRAPPER_KEY = "zsnr_exact_first_step"
LOG = logging.getLogger("zsnr")
_SAMPLERS_LOGGED: set[str] = set()
FRESH_NOISE_SEED_OFFSET = 0x5EED  # the first step's fresh noise must differ from the initial noise


class ZSNRSamplingMixin:
    """Discrete sampling over a float64 alphā table that may end at exactly 0, mixed into the
    model's own prediction class (composed_sampling_class), whose input scaling and x0 formula
    stay in force everywhere but at the SNR-0 sentinel.

    zsnr_base_alphas_cumprod: the schedule the checkpoint declares (before any rescale);
    zsnr_terminal: None (not rescaled) or a key of TERMINALS; zsnr_prediction: the kind of the
    prediction class (host_sampling.V_PREDICTION or EPSILON); zsnr_terminal_sigma: the sentinel
    sigma meaning SNR 0, or None. zsnr_check_pending: the next model call is the first of a
    sampling, whose output the prediction check judges (nodes/prediction_check.py).
    """

    zsnr_check_pending = False

    def configure(self, base_alphas_cumprod: torch.Tensor, terminal: str | None, prediction: str):
        self.zsnr_base_alphas_cumprod = base_alphas_cumprod.to(torch.float64).cpu()
        self.zsnr_terminal = terminal
        self.zsnr_prediction = prediction
        alphas_cumprod = self.zsnr_base_alphas_cumprod
        if terminal is not None:
            alphas_cumprod = rescale_alphas_cumprod_zero_terminal_snr(alphas_cumprod)
            if TERMINALS[terminal] > 0:
                alphas_cumprod = clamp_terminal(alphas_cumprod, TERMINALS[terminal])
        self.zsnr_alphas_cumprod = alphas_cumprod
        sigmas = sigma_from_alphas_cumprod(alphas_cumprod)
        self.zsnr_terminal_sigma = sentinel_sigma(sigmas) if terminal == "exact" else None
        if self.zsnr_terminal_sigma is not None:
            sigmas = sigmas.clone()
            sigmas[-1] = self.zsnr_terminal_sigma
        self.num_timesteps = len(sigmas)
        self.zsnr = terminal is not None
        self.set_sigmas(sigmas)
        return self

    def at_snr_zero(self, sigma: torch.Tensor, ndim: int) -> torch.Tensor | None:
        """Bool mask (broadcastable to a sample of `ndim` dims) of sigmas that mean SNR 0."""
        if self.zsnr_terminal_sigma is None:
            return None
        mask = is_snr_zero(sigma, self.zsnr_terminal_sigma)
        return comfy.model_sampling.reshape_sigma(mask, ndim)

    def calculate_denoised(self, sigma, model_output, model_input):
        """The prediction class's own x0; at the SNR-0 sentinel of a v model exactly -v (paper §6:
        v = sqrt(alphā)·eps - sqrt(1-alphā)·x0 is -x0 at alphā = 0, whatever the input scaling).
        An epsilon model cannot predict x0 there (paper §6); its finite formula at the sentinel
        keeps the output finite, and ZeroTerminalSNR warns the user."""
        denoised = super().calculate_denoised(sigma, model_output, model_input)
        if self.zsnr_check_pending:
            self.zsnr_check_pending = False
            self.check_first_output(sigma, model_output, model_input)
        at_zero = self.at_snr_zero(sigma, model_output.ndim) if self.zsnr_prediction == V_PREDICTION else None
        if at_zero is None:
            return denoised
        return torch.where(at_zero, -model_output, denoised)

    @torch.no_grad()
    def check_first_output(self, sigma, model_output, model_input) -> None:
        """The prediction check (samplers/prediction_check.py) on the first call of a sampling, on
        the input the network really saw; the one host read of this call is the sigma."""
        top = sigma.detach().reshape(-1).max().to("cpu", torch.float64)
        alphas_cumprod = 0.0 if is_snr_zero(top, self.zsnr_terminal_sigma) else float(alphas_cumprod_from_sigma(top))
        if judges(alphas_cumprod):
            verdict = judge(self.zsnr_prediction, model_output, self.calculate_input(sigma, model_input), alphas_cumprod)
            prediction_check.report(self, verdict)


_COMPOSED: dict[type, type] = {}


def composed_sampling_class(prediction_class: type) -> type:
    """ModelSamplingDiscrete composed with the model's own prediction class, as the host composes
    it (upstream comfy/model_base.py `model_sampling()`), with ZSNRSamplingMixin in front."""
    if prediction_class not in _COMPOSED:
        _COMPOSED[prediction_class] = type(
            f"ZSNRSampling_{prediction_class.__name__}",
            (ZSNRSamplingMixin, comfy.model_sampling.ModelSamplingDiscrete, prediction_class), {})
    return _COMPOSED[prediction_class]


def make_sampling(base_alphas_cumprod: torch.Tensor, terminal: str | None, prediction_class: type | str):
    """A configured zsnr sampling object; `prediction_class` is a host class or a kind name
    (v_prediction | epsilon, for the host's plain class)."""
    if isinstance(prediction_class, str):
        prediction_class = standard_prediction_class(prediction_class)
    kind = prediction_kind(prediction_class)
    if kind not in (V_PREDICTION, EPSILON):
        raise ValueError(f"prediction class {prediction_class.__name__} is not a discrete epsilon or v prediction")
    sampling = composed_sampling_class(prediction_class)()
    sampling.zsnr_prediction_class = prediction_class
    return sampling.configure(base_alphas_cumprod, terminal, kind)


@dataclass(frozen=True)
class SamplerIdentity:
    """The k-diffusion function a host Sampler runs, seen through presets and wrappers
    (samplers/sampler_families.py, unwrap_sampler_function)."""
    name: str
    options: dict
    wrapped: bool  # another pack's code runs around the function
    route: str | None  # samplers/sampler_families.py: SENTINEL, OWN_NODES, FIRST_ORDER or None (unknown)


def identify_sampler(sampler) -> SamplerIdentity:
    """A host KSAMPLER's function (`sampler_function`, upstream comfy/samplers.py) through partial
    chains and __wrapped__; a Sampler object that is no KSAMPLER (another pack's) is named by its class."""
    function = getattr(sampler, "sampler_function", None)
    if function is None:
        return SamplerIdentity(type(sampler).__name__, {}, False, None)
    function, bound, wrapped = unwrap_sampler_function(function)
    name = getattr(function, "__name__", type(function).__name__)
    options = {**bound, **getattr(sampler, "extra_options", {})}
    return SamplerIdentity(name, options, wrapped, first_step_route(name))


def _fresh_noise(noise: torch.Tensor, seed) -> torch.Tensor:
    generator = torch.Generator(device="cpu").manual_seed(int(seed or 0) + FRESH_NOISE_SEED_OFFSET)
    return torch.randn(noise.shape, generator=generator, dtype=torch.float32).to(noise)


@torch.no_grad()
def exact_first_step(executor, guider, sigmas, extra_args, callback, noise, latent_image, denoise_mask, disable_pbar):
    """SAMPLER_SAMPLE wrapper: arm the prediction check for the sampling's first model call; when
    the schedule starts at the SNR-0 sentinel, let the host's own sampler take its first step from
    there (x0 = -v exactly at the sentinel) unless that step has no finite limit as sigma_0 → ∞
    (samplers/sampler_families.py, FIRST_ORDER), in which case the step is the first-order one of
    samplers/first_step.py and the host's sampler runs the remaining sigmas.

    no_grad as the host's samplers are: the server runs prompts under inference_mode, but a script
    or node that samples in-process would otherwise record an autograd graph of the first model
    call and hold its activations (350 MiB on a small SD1.5-layout UNet) until sampling ends."""
    model_sampling = guider.inner_model.model_sampling
    if isinstance(model_sampling, ZSNRSamplingMixin):
        model_sampling.zsnr_check_pending = True
    else:  # a later node replaced our ModelSampling (nodes/replaced_sampling.py)
        report_replaced_sampling(model_sampling)
    sentinel = getattr(model_sampling, "zsnr_terminal_sigma", None)
    if sentinel is None or len(sigmas) < 2 or not is_snr_zero(float(sigmas[0]), sentinel):
        return executor(guider, sigmas, extra_args, callback, noise, latent_image, denoise_mask, disable_pbar)
    sampler = identify_sampler(executor.class_obj)
    if not takes_first_order_step(sampler):
        return executor(guider, sigmas, extra_args, callback, noise, latent_image, denoise_mask, disable_pbar)

    # 1. The sampler's first-step noise in the limit (samplers/sampler_families.py, first_step_noise).
    eta, s_noise = first_step_noise(sampler.name, sampler.options)
    sigma_0, sigma_1 = sigmas[0], sigmas[1]
    # 2. The model at SNR 0. The sample is pure noise there: the VP input x/sqrt(1+sigma²) equals
    # `noise` and the latent carries no information (a full denoise from SNR 0 ignores it, as DDIM does).
    x = noise * sigma_0
    denoiser = comfy.samplers.KSamplerX0Inpaint(guider, sigmas)
    denoiser.latent_image, denoiser.noise = latent_image, noise
    s_in = x.new_ones([x.shape[0]])
    x0_hat = denoiser(x, sigma_0 * s_in, denoise_mask=denoise_mask,
                      model_options=extra_args["model_options"], seed=extra_args.get("seed"))
    total_steps = len(sigmas) - 1
    if callback is not None:
        callback(0, x0_hat, x, total_steps)
    # 3. The first-order step to sigma_1 in its sigma_0 → ∞ limit (samplers/first_step.py); fresh
    # noise from its own seed, never the initial noise.
    fresh = _fresh_noise(noise, extra_args.get("seed")) if eta > 0 else torch.zeros_like(noise)
    x_next = ancestral_step_from_snr_zero(x0_hat, noise, fresh, sigma_1, eta=eta, s_noise=s_noise)
    # 4. The host's sampler runs the rest of the schedule (a single-step method: it carries nothing).
    if float(sigma_1) == 0 or len(sigmas) == 2:
        return model_sampling.inverse_noise_scaling(sigmas[-1], x_next)

    def continued(step, denoised, sample, _total):
        callback(step + 1, denoised, sample, total_steps)

    # The host's sampler scales its noise as sigma_1·noise + latent; hand it the noise that
    # reproduces x_next exactly (where a denoise mask keeps the latent, that is the original noise).
    continued_noise = (x_next - latent_image) / sigma_1
    return executor(guider, sigmas[1:], extra_args, continued if callback else None, continued_noise,
                    latent_image, denoise_mask, disable_pbar)


def takes_first_order_step(sampler: SamplerIdentity) -> bool:
    """Whether the pack replaces the sampler's first step from the sentinel: only a known sampler
    without a finite limit (FIRST_ORDER) that no other pack wraps (its code must run first). The
    rest run from the sentinel, as the host's own zsnr option runs them; the log says once per
    sampler what was chosen where the table could not decide."""
    if sampler.route == FIRST_ORDER and not sampler.wrapped:
        return True
    if sampler.route is None:
        _log_once(sampler.name, "zsnr: sampler %s is not in zsnr's first-step table "
                  "(samplers/sampler_families.py); it runs from the SNR-0 sentinel as the host's own zsnr "
                  "option runs it, which is its sigma -> inf limit wherever that limit is finite.", sampler.name)
    elif sampler.route == FIRST_ORDER:
        _log_once(sampler.name, "zsnr: %s is wrapped by another pack's code; its first step from SNR 0 has no "
                  "finite limit, but the wrapper's own logic must run first, so it runs from the SNR-0 sentinel "
                  "as the host's zsnr option runs it.", sampler.name)
    return False


def _log_once(key: str, message: str, *args) -> None:
    if key not in _SAMPLERS_LOGGED:
        _SAMPLERS_LOGGED.add(key)
        LOG.warning(message, *args)


def install_first_step_wrapper(patcher, model_sampling, source: tuple[str, str | None]) -> None:
    """Install the SAMPLER_SAMPLE wrapper (once per patcher) and remember which node declared the
    sampling, (node class, node id), for the prediction check's message."""
    model_sampling.zsnr_source = source
    patcher.remove_wrappers_with_key(comfy.patcher_extension.WrappersMP.SAMPLER_SAMPLE, WRAPPER_KEY)
    patcher.add_wrapper_with_key(comfy.patcher_extension.WrappersMP.SAMPLER_SAMPLE, WRAPPER_KEY, exact_first_step)
