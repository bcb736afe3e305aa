"""The archive the Comfy Registry would get, made by the Registry's own CLI and loaded by itself.

comfy-cli (PyPI `comfy-cli`, pinned in requirements-test.txt) runs `comfy node validate` and
`comfy node pack` on a copy of the git-tracked files (what `comfy node publish` packs:
zip_files in comfy_cli/file_utils.py), so the test never writes node.zip into the work tree. The
archive must hold what ComfyUI reads and no dev file (.comfyignore, docs/publishing.md), and,
unpacked as the only custom_nodes/zsnr of a real server, register every node the checkout does.
comfy-cli runs offline and asks nothing: a private HOME for its config, DO_NOT_TRACK and
COMFY_NO_TELEMETRY (tracking.py, _telemetry_disabled_by_env), --skip-prompt.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from comfy_server import ComfyServer, ServerFailed
from zsnr_testlib import ROOT, TEST_OUTPUT

pytestmark = pytest.mark.e2e

# Every top-level path the repository tracks is one or the other; a new one fails
# test_every_tracked_top_level_path_is_decided until it is put in one set (and .comfyignore).
SHIPPED = {"__init__.py", "nodes", "samplers", "schedules", "reference", "models", "web",
           "example_workflows", "subgraphs", "pyproject.toml", "requirements.txt", "README.md",
           "LICENSE", "icon.png"}
DEV = {".ci", ".github", ".gitignore", ".comfyignore", "Makefile", "requirements-test.txt", "tools",
       "tests", "benchmarks", "docs"}
# The Registry's scan flags an upload for subprocess calls (Comfy-Org/registry-backend #177, #192;
# Comfy-Org/ComfyUI-Manager #2927) and for patterns in any file it holds, tests included
# (registry-backend #180); a flagged version is not served as the latest. Any mention of subprocess in any text file fails;
# pip is looked for in code only, where every mention is a call or an import of it (README's
# install command is text for a person, not a call).
CODE_SUFFIXES = {".py", ".js", ".mjs", ".ts", ".sh", ".bat", ".cmd", ".ps1"}
PIP = re.compile(r"\bpip3?\b")
COMFY = [sys.executable, "-m", "comfy_cli", "--skip-prompt", "--no-enable-telemetry", "--no-json"]
ARCHIVE_COPY = TEST_OUTPUT / "registry_package" / "node.zip"  # kept for a look after the run


def tracked_files() -> list[str]:
    """The repository's tracked files that exist in the work tree (a deleted one is not packed)."""
    listing = subprocess.run(["git", "-C", str(ROOT), "ls-files", "-z"], capture_output=True, check=True)
    return [name for name in listing.stdout.decode().split("\0") if name and (ROOT / name).is_file()]


def run_comfy(args: list[str], cwd: Path, home: Path) -> subprocess.CompletedProcess:
    env = {key: value for key, value in os.environ.items() if key != "COMFY_OUTPUT"}
    env.update(HOME=str(home), DO_NOT_TRACK="1", COMFY_NO_TELEMETRY="1")
    return subprocess.run([*COMFY, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300,
                          stdin=subprocess.DEVNULL)


def warnings_in(result: subprocess.CompletedProcess) -> list[str]:
    return [line for line in (result.stdout + result.stderr).splitlines() if "warning" in line.lower()]


@pytest.fixture(scope="module")
def packed(tmp_path_factory):
    """(validate's result, pack's result, the archive, the tracked files) for the work tree now."""
    work = tmp_path_factory.mktemp("registry_package")
    source, home = work / "zsnr", work / "home"
    files = tracked_files()
    for name in files:
        (source / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, source / name)
    if (ROOT / ".comfyignore").is_file():  # pack reads it from the folder, tracked or not
        shutil.copy2(ROOT / ".comfyignore", source / ".comfyignore")
    git_env = dict(os.environ, GIT_LITERAL_PATHSPECS="1")  # names with spaces and commas as they are
    subprocess.run(["git", "init", "-q", str(source)], check=True)
    subprocess.run(["git", "add", "-f", "--pathspec-from-file=-", "--pathspec-file-nul"], cwd=source, check=True,
                   input="\0".join(files).encode(), env=git_env)
    validate = run_comfy(["node", "validate"], source, home)
    pack = run_comfy(["node", "pack"], source, home)
    archive = source / "node.zip"
    if archive.is_file():
        ARCHIVE_COPY.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(archive, ARCHIVE_COPY)
    return validate, pack, archive, files


@pytest.fixture(scope="module")
def archive_names(packed) -> list[str]:
    _, pack, archive, _ = packed
    assert pack.returncode == 0 and archive.is_file(), f"comfy node pack failed:\n{pack.stdout}\n{pack.stderr}"
    with zipfile.ZipFile(archive) as zipped:
        return [name for name in zipped.namelist() if not name.endswith("/")]


def test_comfy_node_validate_passes_without_a_warning(packed):
    validate = packed[0]
    output = validate.stdout + validate.stderr
    assert validate.returncode == 0, output
    assert not warnings_in(validate), output
    assert "All validation checks passed" in output, output


def test_comfy_node_pack_packs_without_a_warning(packed):
    pack = packed[1]
    output = pack.stdout + pack.stderr
    assert pack.returncode == 0, output
    assert not warnings_in(pack), output
    assert "not including in zip" not in output.lower(), output


def test_every_tracked_top_level_path_is_decided(packed):
    undecided = sorted({name.split("/")[0] for name in packed[3]} - SHIPPED - DEV)
    assert not undecided, (f"{undecided}: new top-level paths; add each to SHIPPED (and take it back in "
                           ".comfyignore) if ComfyUI reads it, else to DEV")


def test_archive_holds_no_dev_file(archive_names):
    dev = [name for name in archive_names if name.split("/")[0] in DEV or name.split("/")[0] not in SHIPPED]
    bytecode = [name for name in archive_names if "__pycache__/" in name or name.endswith((".pyc", ".pyo"))]
    assert not dev, f"dev files in the archive: {dev}"
    assert not bytecode, f"bytecode in the archive (ComfyUI 0.39's governance policy refuses it): {bytecode}"


def test_archive_holds_every_shipped_file(packed, archive_names):
    """Nothing the host reads is dropped: every tracked file under a shipped path is in the archive."""
    wanted = {name for name in packed[3] if name.split("/")[0] in SHIPPED}
    assert not sorted(wanted - set(archive_names)), f"left out of the archive: {sorted(wanted - set(archive_names))}"
    for name in ("__init__.py", "pyproject.toml", "requirements.txt", "LICENSE", "README.md", "icon.png",
                 "models/trained_reference_pair.json", "web/js/zsnr.js"):
        assert name in archive_names


def test_no_archived_file_calls_subprocess_or_pip(packed, archive_names):
    found = []
    with zipfile.ZipFile(packed[2]) as zipped:
        for name in archive_names:
            try:
                text = zipped.read(name).decode("utf-8")
            except UnicodeDecodeError:
                continue  # weights and pictures
            if "subprocess" in text:
                found.append(f"{name}: subprocess")
            if Path(name).suffix in CODE_SUFFIXES and PIP.search(text):
                found.append(f"{name}: pip")
    assert not found, f"the Registry's scan flags these: {found}"


def zsnr_nodes(object_info: dict) -> dict:
    return {name: node for name, node in object_info.items() if node.get("python_module") == "custom_nodes.zsnr"}


def test_unpacked_archive_alone_loads_every_node_in_the_host(packed, archive_names, object_info):
    """A server whose only custom node is the unpacked archive registers the same nodes, with the
    same definitions, as the checkout's server (the e2e session server), and serves the pack's
    extension, routes and templates from the archive."""
    base = TEST_OUTPUT / "hosts" / "registry_archive"
    pack_folder = base / "custom_nodes" / "zsnr"
    shutil.rmtree(base, ignore_errors=True)
    pack_folder.mkdir(parents=True)
    with zipfile.ZipFile(packed[2]) as zipped:
        zipped.extractall(pack_folder)
    # ComfyServer always links custom_nodes/zsnr of its own base directory to this checkout
    # (tools/comfy_server.py, private_base_directory); a second --base-directory after it wins
    # (argparse keeps the last value of a repeated option), so the server reads its custom nodes,
    # inputs and outputs from `base`, whose custom_nodes holds the unpacked archive alone.
    server = ComfyServer(TEST_OUTPUT / "hosts" / "registry_archive_launcher",
                         extra_args=("--base-directory", str(base)))
    try:
        server.start(timeout=240)
    except ServerFailed as error:
        pytest.fail(str(error))
    try:
        archive_client = server.client()
        # the host's start-up timing list names each custom node folder it imported, with
        # "(IMPORT FAILED)" before a failed one (nodes.py, init_external_custom_nodes)
        loaded_line = [line for line in server.log_text().splitlines() if line.endswith(str(pack_folder))]
        assert loaded_line and "IMPORT FAILED" not in loaded_line[0], server.log_tail()
        expected, loaded = zsnr_nodes(object_info), zsnr_nodes(archive_client.object_info())
        assert expected, "the checkout's server registers no zsnr node"
        assert sorted(loaded) == sorted(expected), server.log_tail()
        assert loaded == expected, "a node's definition differs between the archive and the checkout"
        scripts = sorted(s for s in archive_client.get_json("/extensions") if s.startswith("/extensions/zsnr/"))
        assert scripts == sorted(f"/extensions/zsnr/{n[len('web/'):]}" for n in archive_names
                                 if n.startswith("web/") and n.endswith(".js"))
        status, _ = archive_client.request("GET", "/zsnr/timesteps?spacing=trailing&steps=4")
        assert status == 200
        def archived(folder: str) -> list[str]:
            return sorted(Path(n).stem for n in archive_names if n.startswith(folder + "/") and n.endswith(".json"))

        # templates (app/custom_node_manager.py) and subgraph blueprints (app/subgraph_manager.py)
        assert sorted(archive_client.get_json("/api/workflow_templates").get("zsnr", [])) == archived(
            "example_workflows")
        blueprints = [entry["name"] for entry in archive_client.get_json("/global_subgraphs").values()
                      if entry.get("info", {}).get("node_pack") == "custom_nodes.zsnr"]
        assert sorted(blueprints) == archived("subgraphs")
    finally:
        server.stop()
