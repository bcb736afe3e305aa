"""ruff (configured in pyproject.toml) over the whole pack, so style breaks fail the tests."""
from __future__ import annotations

import subprocess
import sys

from zsnr_testlib import ROOT


def test_ruff_is_clean():
    result = subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache", str(ROOT)],
                            cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
