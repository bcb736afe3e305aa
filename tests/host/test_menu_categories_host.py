"""Our nodes sit in the menu next to the host's own equivalents (ComfyUI moved its model patches
to model/patch and its schedulers to model/sampling/schedulers after 0.3.75; we follow the
current layout, and on an older host this test says so and skips)."""
from __future__ import annotations

import pytest

pytestmark = pytest.mark.host

BESIDE = {  # our node -> the host node it belongs next to
    "ZeroTerminalSNR": "ModelSamplingDiscrete",
    "VPredictionAdapter": "ModelSamplingDiscrete",
    "ZSNRRescaleCFG": "RescaleCFG",
    "ZSNRGuidanceInterval": "RescaleCFG",
    "TimestepSpacingScheduler": "BasicScheduler",
    "ZSNRSamplingResolution": "ModelSamplingDiscrete",
}


def category(node_class) -> str:
    if hasattr(node_class, "define_schema"):
        return node_class.define_schema().category
    return node_class.CATEGORY


@pytest.mark.parametrize("ours, theirs", sorted(BESIDE.items()))
def test_category_is_the_hosts_own(host, ours, theirs):
    host_category = category(host.node[theirs])
    if not host_category.startswith("model/"):
        pytest.skip(f"this host files {theirs} under {host_category!r}, the layout before ComfyUI 0.33")
    assert category(host.node[ours]) == host_category
