"""Shortcuts for running this pack's nodes (and the host's zsnr option) in-process on a loaded
host, shared by the host tests and the benchmarks: `host` is a namespace whose `node` is the
host's NODE_CLASS_MAPPINGS with the pack registered."""
from __future__ import annotations


def reference(host, schedule="scaled_linear_zsnr", prediction="v_prediction", dataset="brightness_ramp"):
    return host.node["ZSNRReferenceModel"].execute(
        dataset=dataset, trained_schedule=schedule, prediction=prediction).result[0]


def condition(host, subset="all"):
    return host.node["ZSNRReferenceCondition"].execute(subset=subset).result[0]


def zero_snr(host, model, terminal="exact"):
    return host.node["ZeroTerminalSNR"].execute(model=model, terminal=terminal).result[0]


def v_adapter(host, model, prediction="v_prediction"):
    return host.node["VPredictionAdapter"].execute(model=model, prediction=prediction).result[0]


def host_zsnr_clamp(model, prediction="v_prediction"):
    """The host's own zsnr option: ModelSamplingDiscrete with zsnr = True (alphā_T clamped)."""
    import comfy_extras.nodes_model_advanced as advanced

    return advanced.ModelSamplingDiscrete().patch(model, prediction, True)[0]


def ksample(host, model, sampler="euler", scheduler="simple", steps=10, seeds=16, size=32, cfg=1.0,
            positive=None, negative=None, seed=0):
    """Stock KSampler path (nodes.common_ksampler) on an empty pixel-space latent, all seeds in one
    batch, conditioned on the reference condition by default; returns the samples."""
    import torch

    positive = positive or condition(host)
    negative = negative or positive
    latent = {"samples": torch.zeros(seeds, 3, size, size)}
    out = host.nodes.common_ksampler(model, seed, steps, cfg, sampler, scheduler, positive, negative, latent)
    return out[0]["samples"]


class EvaluationCounter:
    """Counts network evaluations (NFE) through a DIFFUSION_MODEL wrapper on a clone of a model.

    One call of the diffusion model is one NFE: at cfg 1 the host skips the unconditional pass,
    and at cfg > 1 it batches cond and uncond into one call, which still costs one evaluation of
    a batch. The count per sample batch is what a sampler's step cost means.
    """

    def __init__(self, key: str = "zsnr_nfe_counter"):
        self.calls, self.key = 0, key

    def __call__(self, executor, *args, **kwargs):
        self.calls += 1
        return executor(*args, **kwargs)

    def attach(self, model):
        import comfy.patcher_extension

        counted = model.clone()
        counted.add_wrapper_with_key(comfy.patcher_extension.WrappersMP.DIFFUSION_MODEL, self.key, self)
        return counted
