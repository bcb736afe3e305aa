"""Shared test setup for the three tiers (unit, host, e2e).

The pure packages (schedules/, samplers/, reference/) are imported under the pseudo-package
`zsnr_core` whose __path__ is the repository root: their relative imports work and the pack's
__init__.py (which needs ComfyUI) never runs. Tests import them as `from zsnr_core.schedules ...`.
"""
from __future__ import annotations

from pathlib import Path

import pure_core  # noqa: F401 (installs the zsnr_core pseudo-package, tools/pure_core.py)
import pytest
from zsnr_testlib import TEST_OUTPUT

# the browser tier's harness (Chromium, the browser, renderer and page fixtures), shared by the
# three browser modules of tests/e2e; registered here, at the root, as pytest requires of plugins
pytest_plugins = ["zsnr_browser"]


@pytest.fixture(scope="session")
def test_output_dir() -> Path:
    TEST_OUTPUT.mkdir(exist_ok=True)
    return TEST_OUTPUT
