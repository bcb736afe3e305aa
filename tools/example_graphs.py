"""The example workflows as readable API graphs; tools/build_example_workflows.py turns each into
the UI-format JSON users load (example_workflows/<name>.json), and the e2e tier checks that the
committed files convert back to exactly these graphs."""
from __future__ import annotations

from detection_graphs import (
    DETECT_AND_SAVE,
    DETECT_AND_SAVE_LABELS,
    DETECT_AND_SAVE_NOTE,
    detect_and_save_graph,
)

REFERENCE = {"class_type": "ZSNRReferenceModel", "inputs": {
    "dataset": "brightness_ramp", "trained_schedule": "scaled_linear_zsnr", "prediction": "v_prediction"}}


def _decode_and_save(graph: dict, samples: list, prefix: str, first_id: int) -> dict:
    vae, decode, save = str(first_id), str(first_id + 1), str(first_id + 2)
    graph[vae] = {"class_type": "VAELoader", "inputs": {"vae_name": "pixel_space"}}
    graph[decode] = {"class_type": "VAEDecode", "inputs": {"samples": samples, "vae": [vae, 0]}}
    graph[save] = {"class_type": "SaveImage", "inputs": {"images": [decode, 0], "filename_prefix": prefix}}
    return graph


def reference_sampling_graph(spacing: str = "trailing", steps: int = 20, sampler: str = "euler",
                             batch: int = 16, size: int = 64, seed: int = 0,
                             prefix: str = "zsnr/spacing") -> dict:
    """Reference model → TimestepSpacingScheduler → SamplerCustomAdvanced → pixel-space decode."""
    graph = {
        "1": dict(REFERENCE),
        "2": {"class_type": "ZSNRReferenceCondition", "inputs": {"subset": "all"}},
        "3": {"class_type": "TimestepSpacingScheduler", "inputs": {
            "model": ["1", 0], "spacing": spacing, "steps": steps, "denoise": 1.0, "steps_offset": 0}},
        "4": {"class_type": "KSamplerSelect", "inputs": {"sampler_name": sampler}},
        "5": {"class_type": "RandomNoise", "inputs": {"noise_seed": seed}},
        "6": {"class_type": "BasicGuider", "inputs": {"model": ["1", 0], "conditioning": ["2", 0]}},
        "7": {"class_type": "EmptyChromaRadianceLatentImage", "inputs": {"width": size, "height": size, "batch_size": batch}},
        "8": {"class_type": "SamplerCustomAdvanced", "inputs": {
            "noise": ["5", 0], "guider": ["6", 0], "sampler": ["4", 0], "sigmas": ["3", 0], "latent_image": ["7", 0]}},
    }
    return _decode_and_save(graph, ["8", 0], prefix, 9)


def _ksampler(model: str, positive: str, negative: str, latent: str, scheduler: str, steps: int,
              sampler: str = "euler", cfg: float = 1.0, seed: int = 0) -> dict:
    return {"class_type": "KSampler", "inputs": {
        "model": [model, 0], "seed": seed, "steps": steps, "cfg": cfg, "sampler_name": sampler,
        "scheduler": scheduler, "positive": [positive, 0], "negative": [negative, 0],
        "latent_image": [latent, 0], "denoise": 1.0}}


def _stock_ksampler_graph(model_nodes: dict, model: str, scheduler: str, steps: int, sampler: str,
                          batch: int, size: int, seed: int, prefix: str) -> dict:
    """model_nodes → stock KSampler (cfg 1, condition "all") → pixel-space decode → SaveImage (node 9)."""
    graph = {
        **model_nodes,
        "4": {"class_type": "ZSNRReferenceCondition", "inputs": {"subset": "all"}},
        "5": {"class_type": "EmptyChromaRadianceLatentImage", "inputs": {"width": size, "height": size, "batch_size": batch}},
        "6": _ksampler(model, "4", "4", "5", scheduler, steps, sampler, seed=seed),
    }
    return _decode_and_save(graph, ["6", 0], prefix, 7)


def _exact_v_model_nodes() -> dict:
    """Nodes 1-3: the reference model, ZeroTerminalSNR (exact), VPredictionAdapter (v); node 3 is the model."""
    return {
        "1": dict(REFERENCE),
        "2": {"class_type": "ZeroTerminalSNR", "inputs": {"model": ["1", 0], "terminal": "exact"}},
        "3": {"class_type": "VPredictionAdapter", "inputs": {"model": ["2", 0], "prediction": "v_prediction"}},
    }


def ztsnr_vpred_trailing_graph(steps: int = 25, sampler: str = "euler", batch: int = 16, size: int = 64,
                               seed: int = 0, prefix: str = "zsnr/ztsnr_vpred_trailing") -> dict:
    """The paper's fix with the stock KSampler: ZeroTerminalSNR (exact) + v prediction + trailing."""
    return _stock_ksampler_graph(_exact_v_model_nodes(), "3", "trailing", steps, sampler, batch, size, seed, prefix)


def ztsnr_recommended_graph(steps: int = 10, sampler: str = "dpmpp_2m_sde", batch: int = 16, size: int = 64,
                            seed: int = 0, prefix: str = "zsnr/ztsnr_recommended") -> dict:
    """zsnr's recommended setup: exact ZTSNR + v + logsnr_uniform spacing (benchmarks/README.md)."""
    return _stock_ksampler_graph(_exact_v_model_nodes(), "3", "logsnr_uniform", steps, sampler, batch, size, seed, prefix)


def flawed_sd_graph(steps: int = 25, sampler: str = "euler", batch: int = 16, size: int = 64,
                    seed: int = 0, prefix: str = "zsnr/flawed") -> dict:
    """The paper's flawed default: SD schedule, epsilon prediction, leading spacing."""
    return _stock_ksampler_graph({
        "1": {"class_type": "ZSNRReferenceModel", "inputs": {
            "dataset": "brightness_ramp", "trained_schedule": "scaled_linear", "prediction": "epsilon"}},
    }, "1", "leading", steps, sampler, batch, size, seed, prefix)


def host_zsnr_clamp_graph(steps: int = 25, sampler: str = "euler", batch: int = 16, size: int = 64,
                          seed: int = 0, prefix: str = "zsnr/host_zsnr_clamp") -> dict:
    """The host's own fix for comparison: ModelSamplingDiscrete(v_prediction, zsnr) + its `simple` scheduler."""
    return _stock_ksampler_graph({
        "1": dict(REFERENCE),
        "2": {"class_type": "ModelSamplingDiscrete", "inputs": {"model": ["1", 0], "sampling": "v_prediction", "zsnr": True}},
    }, "2", "simple", steps, sampler, batch, size, seed, prefix)


def rescale_cfg_graph(multiplier: float = 0.7, cfg: float = 7.5, steps: int = 25, batch: int = 16,
                      size: int = 64, seed: int = 0, prefix: str = "zsnr/rescale_cfg") -> dict:
    """Plain CFG and RescaleCFG side by side on a conditional prompt (positive dark, negative all)."""
    graph = {
        "1": dict(REFERENCE),
        "2": {"class_type": "ZeroTerminalSNR", "inputs": {"model": ["1", 0], "terminal": "exact"}},
        "3": {"class_type": "ZSNRRescaleCFG", "inputs": {
            "model": ["2", 0], "multiplier": multiplier, "space": "auto", "terminal_step": "guided",
            "sigma_start": 1e9, "sigma_end": 0.0}},
        "4": {"class_type": "ZSNRReferenceCondition", "inputs": {"subset": "dark"}},
        "5": {"class_type": "ZSNRReferenceCondition", "inputs": {"subset": "all"}},
        "6": {"class_type": "EmptyChromaRadianceLatentImage", "inputs": {"width": size, "height": size, "batch_size": batch}},
        "7": _ksampler("2", "4", "5", "6", "trailing", steps, cfg=cfg, seed=seed),
        "8": _ksampler("3", "4", "5", "6", "trailing", steps, cfg=cfg, seed=seed),
    }
    _decode_and_save(graph, ["7", 0], prefix + "_plain", 9)
    return _decode_and_save(graph, ["8", 0], prefix + "_rescaled", 12)


def _checkpoint_fix_graph(ckpt_name: str, positive: str, negative: str, size: int, steps: int, cfg: float,
                          prefix: str) -> dict:
    """The user's checkpoint → ZeroTerminalSNR (exact) → VPredictionAdapter (v) → ZSNRRescaleCFG →
    KSampler (trailing) → its own VAE → SaveImage."""
    return {
        "1": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": ckpt_name}},
        "2": {"class_type": "ZeroTerminalSNR", "inputs": {"model": ["1", 0], "terminal": "exact"}},
        "3": {"class_type": "VPredictionAdapter", "inputs": {"model": ["2", 0], "prediction": "v_prediction"}},
        "4": {"class_type": "ZSNRRescaleCFG", "inputs": {
            "model": ["3", 0], "multiplier": 0.7, "space": "auto", "terminal_step": "guided",
            "sigma_start": 1e9, "sigma_end": 0.0}},
        "5": {"class_type": "CLIPTextEncode", "inputs": {"text": positive, "clip": ["1", 1]}},
        "6": {"class_type": "CLIPTextEncode", "inputs": {"text": negative, "clip": ["1", 1]}},
        "7": {"class_type": "EmptyLatentImage", "inputs": {"width": size, "height": size, "batch_size": 1}},
        "8": {"class_type": "KSampler", "inputs": {
            "model": ["4", 0], "seed": 0, "steps": steps, "cfg": cfg, "sampler_name": "euler",
            "scheduler": "trailing", "positive": ["5", 0], "negative": ["6", 0], "latent_image": ["7", 0],
            "denoise": 1.0}},
        "9": {"class_type": "VAEDecode", "inputs": {"samples": ["8", 0], "vae": ["1", 2]}},
        "10": {"class_type": "SaveImage", "inputs": {"images": ["9", 0], "filename_prefix": prefix}},
    }


def fix_sd2v_checkpoint_graph(ckpt_name: str = "v2-1_768-ema-pruned.safetensors") -> dict:
    """The same fix on a real SD 2.x-v checkpoint (the user's own file in models/checkpoints)."""
    return _checkpoint_fix_graph(ckpt_name, "a dark moody photograph of a lighthouse at night", "", 768, 25, 7.5,
                                 "zsnr/sd2v")


def fix_noobai_vpred_checkpoint_graph(ckpt_name: str = "noobaiXLNAIXL_vPred10Version.safetensors") -> dict:
    """A NoobAI-XL v-pred (or other SDXL zsnr fine-tune) checkpoint: the host reads its `v_pred` and
    `ztsnr` keys and clamps alphā_T to 4.9e-8; ZeroTerminalSNR makes it exact SNR 0 with an exact
    first step, VPredictionAdapter keeps v prediction for merges that lost the `v_pred` key."""
    return _checkpoint_fix_graph(ckpt_name, "masterpiece, best quality, 1girl, night, city lights, dark background",
                                 "worst quality, low quality", 1024, 28, 5.0, "zsnr/noobai_vpred")


def schedule_plot_graph(spacing: str = "trailing", steps: int = 10, y_axis: str = "log_snr") -> dict:
    """The rescaled schedule against the original, with the chosen steps marked."""
    return {
        "1": dict(REFERENCE),
        "2": {"class_type": "ZeroTerminalSNR", "inputs": {"model": ["1", 0], "terminal": "exact"}},
        "3": {"class_type": "ZSNRSchedulePlot", "inputs": {
            "model": ["2", 0], "spacing": spacing, "steps": steps, "y_axis": y_axis}},
    }


# Template file names: the frontend titles a pack's template card with the file name itself (its
# templates store, src/platform/workflow/templates/repositories/workflowTemplatesStore.ts in
# Comfy-Org/ComfyUI_frontend: title = name, no index.json for custom nodes), so they are readable.
RECOMMENDED = "Recommended few-step setup"
ZTSNR_STOCK = "Zero terminal SNR, stock KSampler"
FLAWED = "Compare - the flawed SD default"
HOST_CLAMP = "Compare - the host zsnr clamp"
RESCALE_CFG = "Rescale CFG vs plain CFG"
SCHEDULE_PLOT = "Schedule plot"
CUSTOM_SAMPLER = "Trailing spacing, custom sampler"
FIX_SD2V = "Fix an SD 2.x-v checkpoint"
FIX_NOOBAI = "Fix a NoobAI-XL v-pred checkpoint"

# Examples that need the user's own files; everything else runs as shipped (e2e tier, demo).
NEEDS_USER_FILES = {FIX_SD2V: "needs your own SD 2.x-v checkpoint in models/checkpoints",
                    FIX_NOOBAI: "needs your own NoobAI-XL v-pred (SDXL zsnr) checkpoint in models/checkpoints"}

EXAMPLES = {
    CUSTOM_SAMPLER: (reference_sampling_graph(), {
        "1": "Reference model (exact denoiser)", "3": "Trailing spacing (paper Table 2)"}),
    ZTSNR_STOCK: (ztsnr_vpred_trailing_graph(), {
        "2": "Zero terminal SNR (Algorithm 1)", "3": "v prediction (paper §6)"}),
    RECOMMENDED: (ztsnr_recommended_graph(), {
        "2": "Zero terminal SNR (Algorithm 1)", "3": "v prediction (paper §6)",
        "6": "logsnr_uniform spacing, dpmpp_2m_sde, 10 steps"}),
    FLAWED: (flawed_sd_graph(), {
        "1": "Reference model, SD schedule, epsilon (the flawed default)", "6": "KSampler, leading spacing"}),
    HOST_CLAMP: (host_zsnr_clamp_graph(), {
        "2": "The host's own zsnr option (alphā_T clamped to 4.9e-8)"}),
    RESCALE_CFG: (rescale_cfg_graph(), {
        "3": "Rescale CFG (Algorithm 2)", "4": "positive: dark subset", "5": "negative: all",
        "7": "plain CFG 7.5", "8": "RescaleCFG 0.7, CFG 7.5"}),
    SCHEDULE_PLOT: (schedule_plot_graph(), {"3": "Schedule plot: original vs zero terminal SNR"}),
    FIX_SD2V: (fix_sd2v_checkpoint_graph(), {
        "1": "Your SD 2.x-v checkpoint (v2-1_768-ema-pruned or a zsnr fine-tune)",
        "2": "Zero terminal SNR (Algorithm 1)", "3": "v prediction (paper §6)", "4": "Rescale CFG (Algorithm 2)"}),
    FIX_NOOBAI: (fix_noobai_vpred_checkpoint_graph(), {
        "1": "Your NoobAI-XL v-pred checkpoint (the host reads v_pred + ztsnr: alphā_T clamped)",
        "2": "Zero terminal SNR: the host's clamp → exact 0", "3": "v prediction (for merges without v_pred)",
        "4": "Rescale CFG (Algorithm 2)"}),
}

EXAMPLES[DETECT_AND_SAVE] = (detect_and_save_graph(), DETECT_AND_SAVE_LABELS)
NEEDS_USER_FILES[DETECT_AND_SAVE] = "needs your own checkpoint in models/checkpoints"

_REFERENCE_NOTE = "Runs as shipped: the reference model is built in (no download). "
_CHECKPOINT_NOTE = ("Pick your checkpoint in Load Checkpoint and write your prompts; keep the three zsnr nodes "
                    "between the loader and the KSampler. ")
# The Note each template opens with: what it shows, what to change (tools/build_example_workflows.py)
NOTES = {
    RECOMMENDED: _REFERENCE_NOTE + "Shows zsnr's recommended few-step setup: exact zero terminal SNR + v "
    "prediction + the logsnr_uniform spacing with dpmpp_2m_sde at 10 steps; the images span dark to bright "
    "as the data does. Change: steps (5-10), the sampler, the seed. For your own checkpoint put "
    "Sampling Resolution (zsnr) at your width x height after the model nodes and pick logsnr_resolution.",
    ZTSNR_STOCK: _REFERENCE_NOTE + "Shows the paper's fix with the stock KSampler: Zero Terminal SNR (exact) "
    "+ V-Prediction Adapter + trailing spacing, euler, 25 steps: darker and brighter images than the flawed "
    "default on the same seeds. Change: the scheduler (trailing, logsnr_uniform, karras), steps, sampler.",
    FLAWED: _REFERENCE_NOTE + "Shows the flawed default for comparison: SD's schedule, epsilon prediction and "
    "leading spacing give mid-grey images (a fifth of the data's brightness spread). Change: nothing to fix "
    "here; open 'Zero terminal SNR, stock KSampler' for the fix on the same seeds.",
    HOST_CLAMP: _REFERENCE_NOTE + "Shows ComfyUI's own zsnr option (ModelSamplingDiscrete v_prediction + "
    "zsnr, alphā_T clamped to 4.9e-8) with its simple scheduler, for comparison with zsnr's exact SNR 0: "
    "equal with euler. Change: the sampler (heun, dpmpp_2m) to see where the clamp differs.",
    RESCALE_CFG: _REFERENCE_NOTE + "Shows plain CFG 7.5 (top) against Rescale CFG 0.7 (bottom) on the same "
    "seeds, positive 'dark', negative 'all': plain CFG pushes every sample past the data's darkest range, "
    "Rescale CFG pulls part of them back. Change: multiplier (0.5-0.8), cfg on both KSamplers.",
    SCHEDULE_PLOT: _REFERENCE_NOTE + "Shows the schedule before and after Zero Terminal SNR with the 10 "
    "trailing steps marked (the node previews it live before you queue). Change: spacing, steps, y_axis "
    "(log_snr, sqrt_alphas_cumprod, sigma).",
    CUSTOM_SAMPLER: _REFERENCE_NOTE + "Shows Timestep Spacing Scheduler (trailing, 20 steps) feeding "
    "SamplerCustomAdvanced; the node's live preview draws the steps. Change: spacing, steps, denoise, the "
    "sampler in KSamplerSelect.",
    FIX_SD2V: _CHECKPOINT_NOTE + "Shows the paper's setup on an SD 2.x-v (768-v) checkpoint: Zero Terminal "
    "SNR + V-Prediction Adapter + Rescale CFG 0.7, trailing spacing, 768x768. The card's picture is the same "
    "nodes on the built-in reference model. Change: ckpt_name, prompts, cfg (5-8), multiplier.",
    FIX_NOOBAI: _CHECKPOINT_NOTE + "Shows the fix on a NoobAI-XL v-pred (SDXL zsnr) checkpoint: the host's "
    "clamp becomes exact SNR 0, v prediction is kept for merges that lost it, Rescale CFG 0.7, 1024x1024. "
    "The card's picture is the same nodes on the built-in reference model. Change: ckpt_name, prompts, cfg, "
    "the scheduler (logsnr_resolution with Sampling Resolution (zsnr) for few steps).",
}
NOTES[DETECT_AND_SAVE] = DETECT_AND_SAVE_NOTE
