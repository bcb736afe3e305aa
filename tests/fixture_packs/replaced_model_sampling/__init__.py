"""Fixture pack: a node that replaces the model's ModelSampling through an object patch.

It does what Kosinkadink/ComfyUI-AnimateDiff-Evolved's "Use Evolved Sampling" does (imitated, not
copied): animatediff/nodes_gen2.py clones the model and calls
`model.add_object_patch("model_sampling", new_model_sampling)`, the new object built by
animatediff/utils_model.py (`evolved_model_sampling`, `BetaSchedules.to_model_sampling`) with the
host's own composition (upstream comfy/model_base.py, `model_sampling(model_config, model_type)`) from
a config naming the beta schedule (`sqrt_linear` for AnimateDiff's motion models). Any ModelSampling
an earlier node put on the model, zsnr's included, is gone after it.
"""
import comfy.model_base


class _SamplingConfig:
    """The one attribute ModelSamplingDiscrete reads from a model config (upstream comfy/model_sampling.py)."""

    def __init__(self, beta_schedule: str):
        self.sampling_settings = {"beta_schedule": beta_schedule, "linear_start": 0.00085, "linear_end": 0.012}


class FixtureReplaceModelSampling:
    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"model": ("MODEL",), "beta_schedule": (["sqrt_linear", "linear"],)}}

    RETURN_TYPES = ("MODEL",)
    FUNCTION = "patch"
    CATEGORY = "fixture"

    def patch(self, model, beta_schedule):
        new_model_sampling = comfy.model_base.model_sampling(_SamplingConfig(beta_schedule), model.model.model_type)
        model = model.clone()
        model.add_object_patch("model_sampling", new_model_sampling)
        return (model,)


NODE_CLASS_MAPPINGS = {"FixtureReplaceModelSampling": FixtureReplaceModelSampling}
