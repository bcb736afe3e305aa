"""The bootstrap's choice of a torch stack for a user's ComfyUI, read from the host's own files
(tools/bootstrap.py, startup_import_chain): a host whose start-up imports torchaudio unguarded
needs the stack that has torchaudio on this machine kind; and its frontend option (ensure_frontend,
with tools/comfy_server.py's front_end_args)."""
from __future__ import annotations

import importlib.util
import os
import textwrap
from pathlib import Path

import bootstrap
import pytest


def write_host(root, files: dict[str, str]):
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    return root


def test_unguarded_torchaudio_import_reached_from_start_up_needs_the_audio_stack(tmp_path):
    host = write_host(tmp_path, {
        "main.py": "import nodes\n",
        "nodes.py": "import comfy.sd\n",
        "comfy/__init__.py": "",
        "comfy/sd.py": "from .text_encoders import gemma\n",
        "comfy/text_encoders/__init__.py": "",
        "comfy/text_encoders/gemma.py": "import torchaudio.functional as AF\n",
    })
    assert bootstrap.startup_import_chain(host, "torchaudio") == [
        "nodes", "comfy.sd", "comfy.text_encoders.gemma", "torchaudio.functional"]
    name, calls = bootstrap.torch_stack_for(host)
    assert name == "torch-2.9.1-audio" and calls == bootstrap.HOST_TORCH_WITH_AUDIO


def test_guarded_lazy_or_unreached_imports_keep_the_default_stack(tmp_path):
    host = write_host(tmp_path, {
        "main.py": "import nodes\n",
        "nodes.py": """
            try:
                import torchaudio
            except ImportError:
                torchaudio = None

            def load_audio():
                import torchaudio
        """,
        # a node file the host loads by path at start-up: its import failure is logged, harmless
        "comfy_extras/nodes_audio.py": "import torchaudio\n",
    })
    assert bootstrap.startup_import_chain(host, "torchaudio") is None
    name, calls = bootstrap.torch_stack_for(host)
    assert name == "torch-2.14.1" and calls == [bootstrap.HOST_TORCH]


def test_a_tree_whose_audio_code_uses_comfy_audio_gets_the_default_stack(tmp_path):
    """A 0.37+ tree in the shape upstream's files have (github.com/Comfy-Org/ComfyUI): comfy/audio.py
    ("Audio DSP adapted from TorchAudio": scipy.signal and torch; commit 8ce4c98), the LTX audio VAE
    on 0.33's start-up chain (execution -> comfy_api.latest._io -> comfy.sd) importing comfy.audio
    instead of torchaudio (comfy/ldm/lightricks/vae/audio_vae.py, commit 7a004ca), requirements.txt
    without torchaudio (commit 077bd30, which pins frontend 1.53.6). gemma4 is written the same way
    here; torchaudio is left only in guarded or lazy imports and under `if TYPE_CHECKING:`."""
    host = write_host(tmp_path, {
        "main.py": "import execution\nimport nodes\n",
        "execution.py": "from comfy_api.latest import io\n",
        "nodes.py": "import comfy.sd\n",
        "comfy_api/__init__.py": "",
        "comfy_api/latest/__init__.py": "from ._io import ComfyNode\n",
        "comfy_api/latest/_io.py": "import comfy.sd\n",
        "comfy/__init__.py": "",
        "comfy/sd.py": """
            import comfy.ldm.lightricks.vae.audio_vae
            import comfy.ldm.ace.vae.music_dcae_pipeline
            import comfy.text_encoders.gemma4
        """,
        "comfy/ldm/lightricks/vae/audio_vae.py": "import json\nimport torch\nimport comfy.audio\n",
        "comfy/ldm/ace/vae/music_dcae_pipeline.py": """
            import logging
            try:
                import torchaudio
            except:
                logging.warning("torchaudio missing, ACE model will be broken")
        """,
        "comfy/text_encoders/gemma4.py": """
            from typing import TYPE_CHECKING
            import torch
            import comfy.audio as AF
            if TYPE_CHECKING:
                import torchaudio
        """,
        "comfy/audio.py": "import math\n\nimport scipy.signal\nimport torch\nimport torch.nn.functional as F\n",
        # loaded by path at start-up, outside the import chain
        "comfy_extras/nodes_audio.py": "import comfy.audio\n",
        "requirements.txt": "torch\ntorchsde\ntorchvision\nnumpy>=1.25.0\nscipy\n",
    })
    assert bootstrap.startup_import_chain(host, "torchaudio") is None
    name, calls = bootstrap.torch_stack_for(host)
    assert name == "torch-2.14.1" and calls == [bootstrap.HOST_TORCH]
    assert "torchaudio" not in " ".join(pin for call in calls for pin in call)
    # the same tree with 0.33's unguarded import back in gemma4 needs the audio stack again
    (host / "comfy/text_encoders/gemma4.py").write_text("import torch\nimport torchaudio.functional as AF\n")
    assert bootstrap.startup_import_chain(host, "torchaudio")[-2:] == ["comfy.text_encoders.gemma4", "torchaudio.functional"]
    assert bootstrap.torch_stack_for(host)[0] == "torch-2.9.1-audio"


def test_the_host_under_test_runs_in_the_venv_of_the_stack_chosen_for_it():
    """The real tree this suite runs on (the embedded 0.3.75, or COMFYUI_PATH, e.g. 0.33.0 which
    imports torchaudio at start-up): the bootstrap's choice read from its files is the venv the
    tests run in, so a change of torch_stack_for that would move that host to another stack fails."""
    if not os.environ.get("ZSNR_PYTHON") or os.environ.get("COMFYUI_PYTHON"):
        pytest.skip("not run through tools/bootstrap.py with a venv it chose (COMFYUI_PYTHON is the user's)")
    host = Path(os.environ["ZSNR_COMFYUI_PATH"])
    name, _ = bootstrap.torch_stack_for(host)
    assert bootstrap.venv_for(name) / "bin" / "python" == Path(os.environ["ZSNR_PYTHON"])
    # the chosen stack is the one installed: torchaudio exactly with the audio stack
    assert (importlib.util.find_spec("torchaudio") is not None) == (name == "torch-2.9.1-audio")


def test_each_stack_has_its_own_venv():
    assert bootstrap.venv_for("torch-2.14.1") == bootstrap.VENV
    assert bootstrap.venv_for("torch-2.9.1-audio") != bootstrap.VENV


def test_the_pack_is_linked_into_a_host_in_one_place(tmp_path):
    from comfy_server import ROOT, link_pack

    custom_nodes = tmp_path / "custom_nodes"
    assert link_pack(custom_nodes) is True and (custom_nodes / "zsnr").resolve() == ROOT
    assert link_pack(custom_nodes) is False  # already right: left alone
    (custom_nodes / "zsnr").unlink()
    (custom_nodes / "zsnr").symlink_to(tmp_path, target_is_directory=True)
    assert link_pack(custom_nodes) is True and (custom_nodes / "zsnr").resolve() == ROOT


def test_a_frontend_is_named_by_its_release_number_and_served_from_its_static_folder(tmp_path, monkeypatch):
    """make test FRONTEND=<version>: only a release number reaches pip and a path; an unpacked
    release is reused without a download, and the server harness passes its static folder."""
    from comfy_server import ServerFailed, front_end_args

    for bad in ("latest", "1.58", "../1.58.1", "1.58.1 --index-url=x", ""):
        with pytest.raises(SystemExit):
            bootstrap.ensure_frontend(bad)
    monkeypatch.setattr(bootstrap, "FRONTENDS", tmp_path)
    static = tmp_path / "1.58.1" / "comfyui_frontend_package" / "static"
    static.mkdir(parents=True)
    (static / "index.html").write_text("<html></html>")
    assert bootstrap.ensure_frontend("1.58.1") == static
    monkeypatch.delenv("ZSNR_FRONTEND_ROOT", raising=False)
    assert front_end_args() == ()
    monkeypatch.setenv("ZSNR_FRONTEND_ROOT", str(static))
    assert front_end_args() == ("--front-end-root", str(static))
    monkeypatch.setenv("ZSNR_FRONTEND_ROOT", str(tmp_path))  # no index.html: not a frontend
    with pytest.raises(ServerFailed):
        front_end_args()
