"""Paths and small helpers shared by the three test tiers (imported as a plain module)."""
from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TEST_OUTPUT = ROOT / "test_output"


def comfyui_path() -> Path:
    """The host under test: the one bootstrap resolved, COMFYUI_PATH, or the embedded tree."""
    for var in ("ZSNR_COMFYUI_PATH", "COMFYUI_PATH"):
        if os.environ.get(var):
            return Path(os.environ[var]).resolve()
    return ROOT / ".comfyui"


def custom_nodes_dir(name: str) -> Path:
    """A private custom_nodes folder holding only `zsnr` -> this checkout.

    The host then imports the pack under its real folder name without the tests touching the
    user's ComfyUI tree (COMFYUI_PATH) or depending on the embedded host's link.
    """
    folder = TEST_OUTPUT / "hosts" / name / "custom_nodes"
    folder.mkdir(parents=True, exist_ok=True)
    link = folder / "zsnr"
    if not link.is_symlink():
        link.symlink_to(ROOT, target_is_directory=True)
    return folder
