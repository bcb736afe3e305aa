"""The pack's pure packages (schedules/, samplers/, reference/) for the demo and the benchmarks,
imported without ComfyUI as the tests import them (tests/conftest.py): under a pseudo-package
`zsnr_core` whose __path__ is the repository root, so their relative imports work and the pack's
__init__.py (which needs a running host) never runs."""
from __future__ import annotations

import sys
import types
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

if "zsnr_core" not in sys.modules:
    _package = types.ModuleType("zsnr_core")
    _package.__path__ = [str(ROOT)]
    sys.modules["zsnr_core"] = _package

from zsnr_core.reference import datasets, metrics  # noqa: E402,F401 (re-exported)
