"""The example workflows as readable API graphs; tools/build_example_workflows.py turns each into
the UI-format JSON users load (example_workflows/<name>.json), and the e2e tier checks that the
committed files convert back to exactly these graphs."""
from __future__ import annotations


def reference_sampling_graph(spacing: str = "trailing", steps: int = 20, sampler: str = "euler",
                             batch: int = 16, size: int = 64, seed: int = 0,
                             prefix: str = "zsnr/spacing") -> dict:
    """Reference model → TimestepSpacingScheduler → SamplerCustomAdvanced → pixel-space decode."""
    return {
        "1": {"class_type": "ZSNRReferenceModel", "inputs": {
            "dataset": "brightness_ramp", "trained_schedule": "scaled_linear_zsnr", "prediction": "v_prediction"}},
        "2": {"class_type": "ZSNRReferenceCondition", "inputs": {"subset": "all"}},
        "3": {"class_type": "TimestepSpacingScheduler", "inputs": {
            "model": ["1", 0], "spacing": spacing, "steps": steps, "denoise": 1.0, "steps_offset": 0}},
        "4": {"class_type": "KSamplerSelect", "inputs": {"sampler_name": sampler}},
        "5": {"class_type": "RandomNoise", "inputs": {"noise_seed": seed}},
        "6": {"class_type": "BasicGuider", "inputs": {"model": ["1", 0], "conditioning": ["2", 0]}},
        "7": {"class_type": "EmptyChromaRadianceLatentImage", "inputs": {"width": size, "height": size, "batch_size": batch}},
        "8": {"class_type": "SamplerCustomAdvanced", "inputs": {
            "noise": ["5", 0], "guider": ["6", 0], "sampler": ["4", 0], "sigmas": ["3", 0], "latent_image": ["7", 0]}},
        "9": {"class_type": "VAELoader", "inputs": {"vae_name": "pixel_space"}},
        "10": {"class_type": "VAEDecode", "inputs": {"samples": ["8", 0], "vae": ["9", 0]}},
        "11": {"class_type": "SaveImage", "inputs": {"images": ["10", 0], "filename_prefix": prefix}},
    }


EXAMPLES = {
    "spacing_trailing_reference": (reference_sampling_graph(), {
        "1": "Reference model (exact denoiser)", "3": "Trailing spacing (paper Table 2)"}),
}
