"""Fixture pack: a KSampler whose scheduler list is a copy made at import, with a SCHEDULER_FUNC input.

It does what two packs users run beside zsnr do (imitated, not copied):
- ltdrdata/ComfyUI-Impact-Pack, modules/impact/core.py: `SCHEDULERS = comfy.samplers.KSampler.SCHEDULERS
  + ['AYS SDXL', ...]` at import, offered as the `scheduler` combo of its samplers
  (modules/impact/impact_pack.py); modules/impact/impact_sampling.py: a connected
  `scheduler_func_opt` (type SCHEDULER_FUNC) is called as `scheduler_func(model, sampler_name, steps)`
  and its sigmas replace the scheduler's.
- ltdrdata/ComfyUI-Inspire-Pack, inspire/libs/common.py (the same copy) and inspire/a1111_compat.py
  (`KSampler //Inspire`, the node the server answered 400 for with `trailing` when zsnr loaded later).

The copy is a new list object, so names the host registers after this import are not in it. The
import-time log line tells the tests which load order really happened.
"""
import logging

import comfy.sample
import comfy.samplers

SCHEDULERS = comfy.samplers.KSampler.SCHEDULERS + ["fixture_extra_scheduler"]
logging.info("fixture copied_scheduler_list: copied the scheduler list at import, 'trailing' %s",
             "present" if "trailing" in SCHEDULERS else "absent")


class FixtureCopiedListKSampler:
    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "model": ("MODEL",),
                "seed": ("INT", {"default": 0, "min": 0, "max": 0xFFFFFFFF}),
                "steps": ("INT", {"default": 20, "min": 1, "max": 10000}),
                "cfg": ("FLOAT", {"default": 1.0, "min": 0.0, "max": 100.0}),
                "sampler_name": (comfy.samplers.KSampler.SAMPLERS,),
                "scheduler": (SCHEDULERS,),
                "positive": ("CONDITIONING",),
                "negative": ("CONDITIONING",),
                "latent_image": ("LATENT",),
            },
            "optional": {"scheduler_func_opt": ("SCHEDULER_FUNC",)},
        }

    RETURN_TYPES = ("LATENT",)
    FUNCTION = "sample"
    CATEGORY = "fixture"

    def sample(self, model, seed, steps, cfg, sampler_name, scheduler, positive, negative, latent_image,
               scheduler_func_opt=None):
        if scheduler_func_opt is not None:
            sigmas = scheduler_func_opt(model, sampler_name, steps)
        elif scheduler == "fixture_extra_scheduler":
            sigmas = comfy.samplers.calculate_sigmas(model.get_model_object("model_sampling"), "simple", steps)
        else:
            sigmas = comfy.samplers.calculate_sigmas(model.get_model_object("model_sampling"), scheduler, steps)
        logging.info("fixture copied_scheduler_list: scheduler %r, %d sigmas %s", scheduler, len(sigmas),
                     [round(float(s), 4) for s in sigmas])
        latent = latent_image["samples"]
        noise = comfy.sample.prepare_noise(latent, seed)
        sampler = comfy.samplers.sampler_object(sampler_name)
        samples = comfy.sample.sample_custom(model, noise, cfg, sampler, sigmas, positive, negative, latent,
                                             seed=seed)
        return ({**latent_image, "samples": samples},)


NODE_CLASS_MAPPINGS = {"FixtureCopiedListKSampler": FixtureCopiedListKSampler}
