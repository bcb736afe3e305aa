"""CPU/GPU-agnostic audit (issue 8).

1. The pack's sources (nodes/, schedules/, samplers/, reference/) never hard-code an accelerator
   device or a half-precision dtype: devices come from comfy.model_management or from the tensors
   at hand, float64 is used where precision matters, float32 where the host's own conventions
   say so (SIGMAS, IMAGE). Checked on the syntax tree, so comments and docstrings don't count.
2. The main graphs run in-process with the model's compute dtype forced to float16 and bfloat16
   (the host's ModelComputeDtype node, which the CPU supports) and give finite outputs close to
   the float32 ones.
"""
from __future__ import annotations

import ast

import pytest
import torch
from zsnr_host_helpers import condition, host_zsnr_clamp, ksample, reference, v_adapter, zero_snr
from zsnr_testlib import ROOT

pytestmark = pytest.mark.host
PACKAGES = ("nodes", "schedules", "samplers", "reference")
ACCELERATORS = ("cuda", "mps", "xpu", "npu", "mlu", "hip")
HALF_DTYPES = {"float16", "half", "bfloat16"}
GLOBAL_DEFAULTS = {"set_default_dtype", "set_default_device", "set_default_tensor_type"}


def hard_coded(source: str) -> list[tuple[int, str]]:
    """(line, what) for every hard-coded device or half dtype in Python source."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Attribute):
            if node.attr in ("cuda", "half") or (node.attr in HALF_DTYPES and _is_torch(node.value)):
                found.append((node.lineno, f".{node.attr}"))
            elif node.attr in GLOBAL_DEFAULTS:
                found.append((node.lineno, f"torch.{node.attr} (changes the host's global default)"))
            elif node.attr in ACCELERATORS[1:] and _is_torch(node.value):
                found.append((node.lineno, f"torch.{node.attr}"))
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            if node.value.split(":")[0].lower() in ACCELERATORS:
                found.append((node.lineno, f"device string {node.value!r}"))
    return found


def _is_torch(node) -> bool:
    return isinstance(node, ast.Name) and node.id == "torch"


def test_audit_detects_each_kind_of_hard_coding():
    """The detector itself, on one line per pattern (and none on clean code or in a docstring)."""
    offending = [
        "x = x.cuda()", 'y = torch.zeros(3, device="cuda")', 'd = torch.device("cuda:0")', "x = x.half()",
        "t = torch.ones(2, dtype=torch.float16)", "t = torch.ones(2, dtype=torch.bfloat16)",
        "ok = torch.cuda.is_available()", 'x = x.to("mps")', "torch.set_default_dtype(torch.float64)",
        "m = torch.mps.current_allocated_memory()",
    ]
    for line in offending:
        assert hard_coded(line), line
    clean = ('"""Runs on cuda or cpu; never float16."""\n'
             "x = torch.zeros(3, dtype=torch.float64, device=other.device)\n"
             "y = x.to(comfy.model_management.get_torch_device())  # not .cuda()\n")
    assert hard_coded(clean) == []


def test_pack_sources_hard_code_no_device_or_half_dtype():
    files = sorted(path for package in PACKAGES for path in (ROOT / package).rglob("*.py"))
    assert len(files) > 10, files
    problems = [f"{path.relative_to(ROOT)}:{line}: {what}" for path in files
                for line, what in hard_coded(path.read_text())]
    assert not problems, "hard-coded device/dtype:\n" + "\n".join(problems)


def with_compute_dtype(model, dtype: str):
    import comfy_extras.nodes_model_advanced as advanced

    return advanced.ModelComputeDtype().patch(model, dtype)[0]


def custom_sampling(host, model, sigmas, seeds=4, size=16):
    """SamplerCustomAdvanced with BasicGuider and euler, as the spacing example workflow."""
    node = host.node
    latent = {"samples": torch.zeros(seeds, 3, size, size)}
    guider = node["BasicGuider"].execute(model=model, conditioning=condition(host)).result[0]
    noise = node["RandomNoise"].execute(noise_seed=0).result[0]
    sampler = node["KSamplerSelect"].execute(sampler_name="euler").result[0]
    return node["SamplerCustomAdvanced"].execute(noise=noise, guider=guider, sampler=sampler, sigmas=sigmas,
                                                 latent_image=latent).result[0]["samples"]


def main_graphs(host, dtype: str) -> dict[str, torch.Tensor]:
    """The example workflows' model paths, with the compute dtype forced at the start (before
    the pack's patches, which must keep it) or at the end (after them)."""
    node, base = host.node, reference(host)
    cast = (lambda model: with_compute_dtype(model, dtype)) if dtype != "fp32" else (lambda model: model)
    fixed = v_adapter(host, zero_snr(host, cast(base)))
    rescaled = node["ZSNRRescaleCFG"].execute(model=zero_snr(host, base), multiplier=0.7, space="auto",
                                              terminal_step="guided").result[0]
    sigmas = node["TimestepSpacingScheduler"].execute(model=cast(base), spacing="trailing", steps=6, denoise=1.0,
                                                      steps_offset=0).result[0]
    plot = node["ZSNRSchedulePlot"].execute(model=cast(zero_snr(host, base)), spacing="trailing", steps=6,
                                            y_axis="log_snr").result[0]
    dark = condition(host, "dark")
    return {
        "ztsnr_vpred_trailing (dtype first)": ksample(host, fixed, "euler_ancestral", "trailing", steps=6, seeds=4,
                                                      size=16),
        "rescale_cfg (dtype last)": ksample(host, cast(rescaled), "dpmpp_2m", "trailing", steps=6, seeds=4, size=16,
                                            cfg=7.5, positive=dark),
        "host_zsnr_clamp": ksample(host, cast(host_zsnr_clamp(base)), "euler", "karras", steps=6, seeds=4, size=16),
        "spacing_scheduler": custom_sampling(host, cast(base), sigmas),
        "schedule_plot": plot,
    }


@pytest.fixture(scope="module")
def float32_outputs(host):
    return main_graphs(host, "fp32")


@pytest.mark.parametrize("dtype", ["fp16", "bf16"])
def test_main_graphs_in_half_precision_are_finite_and_close(host, float32_outputs, dtype):
    outputs = main_graphs(host, dtype)
    # Half precision rounds the model's input and output by 2^-11 (fp16) or 2^-8 (bf16) relative;
    # the reference model computes in float64 between. Over 6 steps on samples in [-1, 1] that
    # stays well inside 4·2^-8·6 ≈ 0.1, a bound that still catches a broken step (errors ~1).
    bound = 0.1
    for name, value in outputs.items():
        assert torch.isfinite(value).all(), f"{name} in {dtype}: non-finite output"
        difference = (value.float() - float32_outputs[name].float()).abs().max().item()
        print(f"{dtype} {name}: max |difference to float32| = {difference:.2e}")
        assert difference < bound, f"{name} in {dtype} differs from float32 by {difference:.3f}"
