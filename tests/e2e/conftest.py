"""e2e tier: the real ComfyUI server as a subprocess on a free 127.0.0.1 port.

Which frontend the server serves: the host's own pinned comfyui-frontend-package, unless the run
names one, `make test FRONTEND=1.58.1` or `ZSNR_FRONTEND=1.58.1 make test` (one variable; any
release on the registry). tools/bootstrap.py then unpacks that release into .frontends/<version>/
and sets ZSNR_FRONTEND_ROOT to its static folder; every ComfyServer (tools/comfy_server.py,
front_end_args) starts with `--front-end-root` on it. A browser test needs nothing of its own:
the fixture `requested_frontend` is the version asked for (None: the host's own), and a page's
`window.__COMFYUI_FRONTEND_VERSION__` is the version it really runs.
"""
from __future__ import annotations

import os

import pytest
from comfy_server import ComfyServer, ServerFailed
from zsnr_testlib import TEST_OUTPUT


@pytest.fixture(scope="session")
def requested_frontend() -> str | None:
    """The frontend release this run was asked to serve (ZSNR_FRONTEND), or None for the host's own."""
    return os.environ.get("ZSNR_FRONTEND", "").strip() or None


@pytest.fixture(scope="session")
def server():
    """One server for the e2e session; stopped even when tests fail. A server that never comes up
    fails the tests with its log tail instead of hanging."""
    instance = ComfyServer(TEST_OUTPUT / "hosts" / "e2e")
    try:
        instance.start(timeout=240)
    except ServerFailed as error:
        pytest.fail(str(error))
    try:
        yield instance
    finally:
        instance.stop()


@pytest.fixture(scope="session")
def client(server):
    return server.client()


@pytest.fixture(scope="session")
def object_info(client):
    return client.object_info()


@pytest.fixture(scope="session")
def host_version(client) -> str:
    """The ComfyUI version of the server under test, as the server itself reports it."""
    return client.comfyui_version()
