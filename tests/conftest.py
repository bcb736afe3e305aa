"""Shared test setup for the three tiers (unit, host, e2e).

The pure packages (schedules/, samplers/, reference/) are imported under the pseudo-package
`zsnr_core` whose __path__ is the repository root: their relative imports work and the pack's
__init__.py (which needs ComfyUI) never runs. Tests import them as `from zsnr_core.schedules ...`.
"""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent
sys.path.insert(0, str(TESTS))
sys.path.insert(0, str(TESTS.parent / "tools"))

import pure_core  # noqa: E402,F401 (installs the zsnr_core pseudo-package, tools/pure_core.py)
from zsnr_testlib import TEST_OUTPUT  # noqa: E402


@pytest.fixture(scope="session")
def test_output_dir() -> Path:
    TEST_OUTPUT.mkdir(exist_ok=True)
    return TEST_OUTPUT
