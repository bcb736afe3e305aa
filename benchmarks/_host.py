"""The real ComfyUI imported in-process on the CPU, with this pack loaded as ComfyUI loads it.

Same approach as tests/host/conftest.py: put the host on sys.path, force the CPU before
comfy.model_management is imported, load the built-in extra nodes, then load the pack from a
private custom_nodes folder holding only a `zsnr` link to this checkout (so the pack is imported
under its real folder name and registers its schedulers in the host's list).
"""
from __future__ import annotations

import asyncio
import sys
import types
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))

# comfyui_path: the host to benchmark is the one the server harness resolves (ZSNR_COMFYUI_PATH /
# COMFYUI_PATH, else the embedded tree), so the benchmarks and the demo measure the same host
from comfy_server import host_path as comfyui_path  # noqa: E402
from pack_nodes import condition, host_zsnr_clamp, v_adapter, zero_snr  # noqa: E402,F401 (re-exported)
from pack_nodes import reference as reference_model  # noqa: E402,F401

RESULTS = ROOT / "benchmarks" / "results"
COUNTER_KEY = "zsnr_benchmark_nfe"


def _custom_nodes_dir() -> Path:
    folder = RESULTS / "host" / "custom_nodes"
    folder.mkdir(parents=True, exist_ok=True)
    link = folder / "zsnr"
    if not link.is_symlink():
        link.symlink_to(ROOT, target_is_directory=True)
    return folder


def load_host(threads: int | None = None) -> types.SimpleNamespace:
    """Import the host (CPU) and the pack; returns nodes, node (the class mappings) and pack."""
    if threads:
        torch.set_num_threads(threads)
    path = comfyui_path()
    if not (path / "comfy").is_dir():
        raise SystemExit(f"no ComfyUI at {path}: run `make bootstrap` or set COMFYUI_PATH")
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))
    import comfy.cli_args

    comfy.cli_args.args.cpu = True
    import comfy.model_management  # noqa: F401  (only after args.cpu is set)
    import comfy.utils
    import nodes

    comfy.utils.set_progress_bar_enabled(False)  # one tqdm bar per call would drown the tables

    if "EmptyChromaRadianceLatentImage" not in nodes.NODE_CLASS_MAPPINGS:
        asyncio.run(nodes.init_builtin_extra_nodes())
    pack = _custom_nodes_dir() / "zsnr"
    module_name = str(pack).replace(".", "_x_")
    if module_name not in sys.modules and not asyncio.run(nodes.load_custom_node(str(pack))):
        raise SystemExit(f"the zsnr pack failed to import from {pack} (traceback above)")
    return types.SimpleNamespace(nodes=nodes, node=nodes.NODE_CLASS_MAPPINGS, pack=sys.modules[module_name])


class EvaluationCounter:
    """Counts network evaluations (NFE) through a DIFFUSION_MODEL wrapper on a clone of a model.

    One call of the diffusion model is one NFE: at cfg 1 the host skips the unconditional pass,
    and at cfg > 1 it batches cond and uncond into one call, which still costs one evaluation of
    a batch. The count per sample batch is what a sampler's step cost means.
    """

    def __init__(self):
        self.calls = 0

    def __call__(self, executor, *args, **kwargs):
        self.calls += 1
        return executor(*args, **kwargs)

    def attach(self, model):
        import comfy.patcher_extension

        counted = model.clone()
        counted.add_wrapper_with_key(comfy.patcher_extension.WrappersMP.DIFFUSION_MODEL, COUNTER_KEY, self)
        return counted


def ksample(host, model, sampler, scheduler, steps, seeds, size=64, cfg=1.0, seed=0, positive=None, negative=None):
    """Stock KSampler path (nodes.common_ksampler) on an empty pixel-space latent, all seeds in one
    batch. Returns (samples [seeds, 3, size, size], NFE)."""
    positive = positive or condition(host)
    negative = negative or positive
    counter = EvaluationCounter()
    latent = {"samples": torch.zeros(seeds, 3, size, size)}
    out = host.nodes.common_ksampler(counter.attach(model), seed, steps, cfg, sampler, scheduler,
                                     positive, negative, latent, disable_noise=False)
    return out[0]["samples"], counter.calls
