"""Paths and small helpers shared by the three test tiers (imported as a plain module)."""
from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TEST_OUTPUT = ROOT / "test_output"
