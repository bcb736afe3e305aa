"""pyproject.toml's [tool.comfy] metadata, as the Comfy Registry, Manager and comfy-cli read it."""
from __future__ import annotations

import pytest
import tomllib
from packaging.specifiers import SpecifierSet
from packaging.version import Version
from zsnr_testlib import ROOT


@pytest.fixture(scope="module")
def comfy_metadata():
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["comfy"]


# 0.3.75: CI's embedded host; 0.33.0: the current host README's compatibility table was run on;
# 0.38.1: upstream's release line at the time of writing.
@pytest.mark.parametrize("version", ["0.3.75", "0.33.0", "0.38.1"])
def test_requires_comfyui_admits_every_tested_and_current_release(comfy_metadata, version):
    assert Version(version) in SpecifierSet(comfy_metadata["requires-comfyui"])


def test_requires_comfyui_refuses_releases_older_than_the_oldest_tested(comfy_metadata):
    assert Version("0.3.74") not in SpecifierSet(comfy_metadata["requires-comfyui"])
