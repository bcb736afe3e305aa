"""Host tier: the real ComfyUI imported in-process on the CPU, the pack loaded as ComfyUI loads it."""
from __future__ import annotations

import asyncio
import sys
import types

import pytest
from zsnr_testlib import comfyui_path, custom_nodes_dir


@pytest.fixture(scope="session")
def host():
    """Import ComfyUI (CPU), its built-in extra nodes and this pack.

    Returns a namespace: `nodes` (the host's nodes module), `node` (its NODE_CLASS_MAPPINGS),
    `pack` (the pack module as ComfyUI imported it).
    """
    path = comfyui_path()
    if not (path / "comfy").is_dir():
        pytest.fail(f"no ComfyUI at {path}: run the tests through `make test`")
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))
    import comfy.cli_args

    comfy.cli_args.args.cpu = True
    import comfy.model_management  # noqa: F401  (only after args.cpu is set)
    import nodes

    if "EmptyChromaRadianceLatentImage" not in nodes.NODE_CLASS_MAPPINGS:
        asyncio.run(nodes.init_builtin_extra_nodes())
    pack = custom_nodes_dir("inprocess") / "zsnr"
    module_name = str(pack).replace(".", "_x_")
    if module_name not in sys.modules:
        if not asyncio.run(nodes.load_custom_node(str(pack))):
            pytest.fail(f"the zsnr pack failed to import from {pack} (traceback in the log above)")
    return types.SimpleNamespace(nodes=nodes, node=nodes.NODE_CLASS_MAPPINGS, pack=sys.modules[module_name])
