"""e2e tier: the real ComfyUI server as a subprocess on a free 127.0.0.1 port."""
from __future__ import annotations

import pytest
from comfy_server import ComfyServer, ServerFailed
from zsnr_testlib import TEST_OUTPUT


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
