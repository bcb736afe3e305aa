"""pyproject.toml's [tool.comfy] metadata and the publish workflow, as the Comfy Registry, the
Manager and comfy-cli read them (https://docs.comfy.org/registry/specifications). The archive
itself is checked with comfy-cli in tests/e2e/test_registry_package.py."""
from __future__ import annotations

import struct
import subprocess
import urllib.parse

import pytest
import tomllib
import yaml
from comfy_cli.registry.config_parser import validate_version
from packaging.specifiers import SpecifierSet
from packaging.version import Version
from zsnr_testlib import ROOT

PUBLISH_WORKFLOW = ROOT / ".github" / "workflows" / "publish.yml"


@pytest.fixture(scope="module")
def pyproject():
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


@pytest.fixture(scope="module")
def comfy_metadata(pyproject):
    return pyproject["tool"]["comfy"]


# 0.3.75: CI's embedded host; 0.33.0: the current host README's compatibility table was run on;
# 0.38.1: upstream's release line at the time of writing.
@pytest.mark.parametrize("version", ["0.3.75", "0.33.0", "0.38.1"])
def test_requires_comfyui_admits_every_tested_and_current_release(comfy_metadata, version):
    assert Version(version) in SpecifierSet(comfy_metadata["requires-comfyui"])


def test_requires_comfyui_refuses_releases_older_than_the_oldest_tested(comfy_metadata):
    assert Version("0.3.74") not in SpecifierSet(comfy_metadata["requires-comfyui"])


def test_requires_comfyui_refuses_the_next_major_version(comfy_metadata):
    assert Version("1.0.0") not in SpecifierSet(comfy_metadata["requires-comfyui"])


def test_comfy_cli_keeps_requires_comfyui(comfy_metadata):
    """comfy-cli's own parser returns the range unchanged; one it cannot parse it replaces by ""
    (and the Registry then records no range at all)."""
    spec = comfy_metadata["requires-comfyui"]
    assert validate_version(spec, "requires-comfyui") == spec


def png_size(data: bytes) -> tuple[int, int]:
    """(width, height) from a PNG's IHDR chunk (PNG spec, 11.2.2), or fail if it is no PNG."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR", "the icon is not a PNG file"
    return struct.unpack(">II", data[16:24])


def test_icon_is_a_raw_github_file_of_this_repository_within_the_registry_limits(pyproject, comfy_metadata):
    """The Registry's form (specifications, "Icon"): a URL, SVG/PNG/JPG/GIF, at most 800x400. Ours is
    the raw address of a tracked file of the repository named in [project.urls]."""
    icon = urllib.parse.urlparse(comfy_metadata["Icon"])
    repository = urllib.parse.urlparse(pyproject["project"]["urls"]["Repository"])
    owner, repo, branch, *path = icon.path.strip("/").split("/")
    assert icon.scheme == "https" and icon.netloc == "raw.githubusercontent.com"
    assert repository.netloc == "github.com" and f"/{owner}/{repo}" == repository.path.rstrip("/")
    assert branch == "main"  # the branch the publish workflow publishes from
    local = "/".join(path)
    tracked = subprocess.run(["git", "-C", str(ROOT), "ls-files", "--error-unmatch", local], capture_output=True)
    assert tracked.returncode == 0, f"{local} is not tracked: the raw URL would answer 404"
    width, height = png_size((ROOT / local).read_bytes())
    assert 0 < width <= 800 and 0 < height <= 400


def test_publish_workflow_has_the_documented_form():
    """https://docs.comfy.org/registry/publishing ("Option 2: Github Actions"): on a push to main
    that changes pyproject.toml, Comfy-Org/publish-node-action with the REGISTRY_ACCESS_TOKEN secret."""
    workflow = yaml.safe_load(PUBLISH_WORKFLOW.read_text())
    triggers = workflow.get("on", workflow.get(True))  # YAML 1.1 reads a bare `on` key as true
    assert triggers["push"]["paths"] == ["pyproject.toml"]
    assert "main" in triggers["push"]["branches"]
    steps = [step for job in workflow["jobs"].values() for step in job["steps"]]
    publish = [step for step in steps if step.get("uses", "").startswith("Comfy-Org/publish-node-action@")]
    assert len(publish) == 1
    assert publish[0]["with"]["personal_access_token"] == "${{ secrets.REGISTRY_ACCESS_TOKEN }}"
