"""The pure packages never import the host, and are importable only as parts of the pack."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest
from zsnr_testlib import ROOT

PURE_PACKAGES = ("schedules", "samplers", "reference")
# top-level modules of a ComfyUI tree: none of them may be loaded by pure code
HOST_MODULES = (
    "comfy",
    "comfy_api",
    "comfy_extras",
    "comfy_execution",
    "folder_paths",
    "nodes",
    "server",
    "execution",
)
HOST_IMPORT = re.compile(
    r"^\s*(?:import|from)\s+(?:comfy\w*|folder_paths|nodes|server|execution)\b", re.MULTILINE
)


def pure_modules() -> list[str]:
    modules = []
    for package in PURE_PACKAGES:
        folder = ROOT / package
        if folder.is_dir():
            modules += [
                f"{package}.{path.stem}".removesuffix(".__init__") for path in sorted(folder.glob("*.py"))
            ]
    return modules


def test_the_pure_packages_exist():
    assert {
        "schedules.spacing",
        "schedules.conversions",
        "samplers.prediction",
        "samplers.first_step",
    } <= set(pure_modules())


def test_importing_every_pure_module_loads_no_host_module(tmp_path):
    # a fresh interpreter, started outside the repository, so nothing is importable by accident
    script = f"""
import importlib, json, sys, types
package = types.ModuleType("zsnr_core")
package.__path__ = [{str(ROOT)!r}]
sys.modules["zsnr_core"] = package
for name in {pure_modules()!r}:
    importlib.import_module("zsnr_core." + name)
print(json.dumps(sorted(sys.modules)))
"""
    run = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert run.returncode == 0, run.stderr
    loaded = json.loads(run.stdout.strip().splitlines()[-1])
    top_level = {name.split(".")[0] for name in loaded}
    assert not top_level & set(HOST_MODULES), sorted(top_level & set(HOST_MODULES))
    # a top-level `import schedules` (instead of a relative import) would register it bare
    assert not top_level & set(PURE_PACKAGES), sorted(top_level & set(PURE_PACKAGES))


@pytest.mark.parametrize("package", PURE_PACKAGES)
def test_source_never_imports_the_host(package):
    for path in sorted((ROOT / package).glob("*.py")):
        found = HOST_IMPORT.findall(path.read_text(encoding="utf-8"))
        assert not found, f"{path.relative_to(ROOT)} imports the host: {found}"
