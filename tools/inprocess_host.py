"""The real ComfyUI imported in-process on the CPU, with this pack loaded as ComfyUI loads it:
shared by the host test tier (tests/host/conftest.py) and the benchmarks (benchmarks/_host.py).

Put the host on sys.path, force the CPU before comfy.model_management is imported, load the
built-in extra nodes, then load the pack from a private custom_nodes folder holding only a `zsnr`
link to this checkout (comfy_server.private_base_directory), so the pack is imported under its
real folder name and registers its schedulers in the host's list, and a user's tree
(COMFYUI_PATH) is never touched.
"""
from __future__ import annotations

import asyncio
import sys
import types
from pathlib import Path

from comfy_server import host_path, private_base_directory


class HostUnavailable(RuntimeError):
    pass


def import_host() -> Path:
    """Make the host importable on the CPU (sys.path, args.cpu before comfy.model_management),
    without loading any node: enough for scripts that only need comfy.ldm or comfy.ops."""
    path = host_path()
    if not (path / "comfy").is_dir():
        raise HostUnavailable(f"no ComfyUI at {path}: run through `make test` / `make bootstrap` or set COMFYUI_PATH")
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))
    import comfy.cli_args

    comfy.cli_args.args.cpu = True
    import comfy.model_management  # noqa: F401  (only after args.cpu is set)
    return path


def load_host(base: Path, quiet: bool = False) -> types.SimpleNamespace:
    """Import the host (CPU) and the pack from `base`/custom_nodes; returns a namespace with
    `nodes` (the host's nodes module), `node` (its NODE_CLASS_MAPPINGS) and `pack` (the pack module
    as ComfyUI imported it). quiet: no progress bars (one tqdm bar per call drowns a table)."""
    import_host()
    import comfy.utils
    import nodes

    if quiet:
        comfy.utils.set_progress_bar_enabled(False)
    if "EmptyChromaRadianceLatentImage" not in nodes.NODE_CLASS_MAPPINGS:
        asyncio.run(nodes.init_builtin_extra_nodes())
    pack = private_base_directory(base) / "custom_nodes" / "zsnr"
    module_name = str(pack).replace(".", "_x_")  # how the host names a custom node's module
    if module_name not in sys.modules and not asyncio.run(nodes.load_custom_node(str(pack))):
        raise HostUnavailable(f"the zsnr pack failed to import from {pack} (traceback in the log above)")
    return types.SimpleNamespace(nodes=nodes, node=nodes.NODE_CLASS_MAPPINGS, pack=sys.modules[module_name])
