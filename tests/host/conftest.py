"""Host tier: the real ComfyUI imported in-process on the CPU, the pack loaded as ComfyUI loads it
(tools/inprocess_host.py)."""
from __future__ import annotations

import pytest
from inprocess_host import HostUnavailable, load_host
from zsnr_testlib import TEST_OUTPUT


@pytest.fixture(scope="session")
def host():
    """Namespace: `nodes` (the host's nodes module), `node` (its NODE_CLASS_MAPPINGS), `pack`."""
    try:
        return load_host(TEST_OUTPUT / "hosts" / "inprocess")
    except HostUnavailable as error:
        pytest.fail(str(error))
