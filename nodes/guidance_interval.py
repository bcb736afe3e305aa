"""ZSNRGuidanceInterval: classifier-free guidance only inside an interval of log-SNR
(Kynkäänniemi et al. 2024, arXiv 2404.07724), the conditional prediction (CFG 1) outside it.
samplers/guidance_interval.py holds the arithmetic, web/docs/ZSNRGuidanceInterval.md the choices,
docs/guidance_at_snr0.md the measurement behind the default.

How it composes (the post-CFG design of nodes/rescale_cfg.py): a post-CFG function that adds a
correction to the incoming `denoised`. Inside the interval the correction is 0, so whatever the
host's cfg slot and earlier post-CFG nodes made passes unchanged. Outside it the correction is
cond_denoised - denoised: the result is the conditional prediction, "guidance off" for every
guidance before this node in the chain (the cfg slot, e.g. the host's RescaleCFG, and earlier
post-CFG nodes), so two interval nodes give the intersection of their intervals. Post-CFG nodes
after it still run; put it last (next to the sampler) to switch all guidance off outside.
The network still evaluates the negative outside the interval: skipping it would need a
host-device synchronisation per step to decide (tests/host/test_host_syncs.py counts them).
"""
from __future__ import annotations

import logging
import math

from comfy_api.latest import io

from ..samplers.guidance_interval import in_interval, interval_change, log_snr
from .errors import node_error, require_model
from .rescale_cfg import device_pair, model_family
from .schema_extras import search_aliases
from .validation import SchemaCheckedNode, check_arguments

LOG = logging.getLogger("zsnr")
NODE_ID = "ZSNRGuidanceInterval"
# A widget at its end means "no bound on that side" (as ZSNRRescaleCFG's sigma_start): the host's
# zsnr clamp is λ = -16.8, a float32 flow sigma next to 1 about -16, so ±30 is never a real level.
LOG_SNR_BOUND = 30.0
# The default interval: guidance off at the noisiest steps, as Kynkäänniemi et al. recommend: λ < -4
# is SNR 0 and the five steps after it (down to λ -4.01) of a 25-step trailing schedule. On the
# colour network it cut saturation (chroma 0.498 -> 0.410 at CFG 7.5) and kept the class
# (docs/guidance_at_snr0.md).
DEFAULT_LAMBDA_MIN = -4.0


def sigma_log_snr(model_sampling, sigma, warned: set):
    """λ per sample of the host's sigma [B], on sigma's device, for any model family: the (signal,
    noise) pair of nodes/rescale_cfg.model_pair (VP with sigma_data and a declared SNR-0 sentinel,
    flow, Cosmos RFlow). An unknown family is read as VP, with a warning once per sampling type."""
    import comfy.model_sampling

    _, path = model_family(model_sampling)
    if path == "unknown":
        if type(model_sampling) not in warned:
            warned.add(type(model_sampling))
            LOG.warning("zsnr: %s: unknown model sampling %s; reading its sigma as a VP sigma (λ = -2·log sigma)",
                        NODE_ID, type(model_sampling).__name__)
        path = "vp"
    if path == "flow":
        signal, noise = device_pair("flow", sigma, rflow=isinstance(model_sampling, comfy.model_sampling.COSMOS_RFLOW))
    else:
        signal, noise = device_pair("vp", sigma, float(getattr(model_sampling, "sigma_data", 1.0)),
                                    getattr(model_sampling, "zsnr_terminal_sigma", None))
    return log_snr(signal, noise)


def make_post_cfg_function(lambda_min: float, lambda_max: float):
    """The host post-CFG function: args → denoised (comfy.samplers.cfg_function). No host-device
    synchronisation: the interval is a mask on the device, applied with torch.where."""
    warned = set()

    def guidance_interval_post(args):
        denoised = args["denoised"]
        sigma = args["sigma"].reshape(-1)
        lam = sigma_log_snr(args["model"].model_sampling, sigma, warned)
        inside = in_interval(lam, lambda_min, lambda_max)
        return denoised + interval_change(denoised, args["cond_denoised"], inside)

    return guidance_interval_post


def interval_bounds(lambda_min: float, lambda_max: float) -> tuple[float, float]:
    """Widget values to the interval: a widget at its end is an unbounded side."""
    low = -math.inf if lambda_min <= -LOG_SNR_BOUND else float(lambda_min)
    high = math.inf if lambda_max >= LOG_SNR_BOUND else float(lambda_max)
    return low, high


class ZSNRGuidanceInterval(SchemaCheckedNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id=NODE_ID,
            display_name="Guidance Interval (zsnr)",
            category="model/patch",
            **search_aliases("guidance interval", "cfg interval", "limited interval guidance", "cfg schedule",
                             "over-saturation"),
            description=(
                "Classifier-free guidance only where the log signal-to-noise ratio λ lies in [lambda_min, "
                "lambda_max] (Kynkäänniemi et al. 2024); elsewhere the sampler gets the conditional prediction "
                "(CFG 1). At SNR 0 (λ = -inf) guidance can only shift brightness and colour (Lin et al. 2023, "
                "§5.2): the default leaves the noisiest steps unguided. Put it last, next to the sampler."
            ),
            inputs=[
                io.Model.Input("model", tooltip="Any diffusion or flow model; the returned model limits its guidance."),
                io.Float.Input("lambda_min", default=DEFAULT_LAMBDA_MIN, min=-LOG_SNR_BOUND, max=LOG_SNR_BOUND,
                               step=0.1,
                               tooltip="Guide only where log-SNR λ >= lambda_min (noisier steps: CFG 1). λ = -2·log "
                                       f"sigma on eps/v models; SNR 0 is -inf. {-LOG_SNR_BOUND:g} = no lower bound "
                                       "(guide from the first step)."),
                io.Float.Input("lambda_max", default=LOG_SNR_BOUND, min=-LOG_SNR_BOUND, max=LOG_SNR_BOUND, step=0.1,
                               tooltip="Guide only where λ <= lambda_max (cleaner steps: CFG 1). "
                                       f"{LOG_SNR_BOUND:g} = no upper bound (guide to the last step)."),
            ],
            outputs=[io.Model.Output(tooltip="A clone of the model whose guidance is limited to the interval.")],
        )

    @classmethod
    def execute(cls, model, lambda_min=DEFAULT_LAMBDA_MIN, lambda_max=LOG_SNR_BOUND) -> io.NodeOutput:
        check_arguments(cls, model=model, lambda_min=lambda_min, lambda_max=lambda_max)
        require_model(NODE_ID, "model", model)
        if lambda_min > lambda_max:  # the one rule across inputs: a schema bounds each input alone
            raise node_error(NODE_ID, "lambda_min", lambda_min,
                             f"lambda_min <= lambda_max ({lambda_max}): guidance applies where "
                             "lambda_min <= λ <= lambda_max")
        patched = model.clone()
        patched.set_model_sampler_post_cfg_function(make_post_cfg_function(*interval_bounds(lambda_min, lambda_max)))
        return io.NodeOutput(patched)


NODES = [ZSNRGuidanceInterval]
