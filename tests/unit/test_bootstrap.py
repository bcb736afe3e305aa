"""The bootstrap's choice of a torch stack for a user's ComfyUI, read from the host's own files
(tools/bootstrap.py, startup_import_chain): a host whose start-up imports torchaudio unguarded
needs the stack that has torchaudio on this machine kind."""
from __future__ import annotations

import textwrap

import bootstrap


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
