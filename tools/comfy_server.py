"""Start the real ComfyUI server on 127.0.0.1 and talk to it over its HTTP and WebSocket API.

Used by the demo, the benchmarks and the e2e tests. Standard library plus `websocket-client`.
"""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def host_path() -> Path:
    for var in ("ZSNR_COMFYUI_PATH", "COMFYUI_PATH"):
        if os.environ.get(var):
            return Path(os.environ[var]).resolve()
    return ROOT / ".comfyui"


def host_python() -> str:
    return os.environ.get("ZSNR_PYTHON") or os.environ.get("COMFYUI_PYTHON") or sys.executable


def front_end_args() -> tuple[str, ...]:
    """--front-end-root for the frontend the bootstrap unpacked (ZSNR_FRONTEND=<version> gives
    ZSNR_FRONTEND_ROOT, tools/bootstrap.py); none: the host serves its own pinned frontend."""
    root = os.environ.get("ZSNR_FRONTEND_ROOT")
    if not root:
        return ()
    if not (Path(root) / "index.html").is_file():
        raise ServerFailed(f"ZSNR_FRONTEND_ROOT={root} holds no index.html (run through tools/bootstrap.py)")
    return ("--front-end-root", root)


def private_base_directory(base: Path) -> Path:
    """A --base-directory whose custom_nodes holds only `zsnr` -> this checkout.

    The server then loads this pack under its real folder name and writes its outputs, inputs and
    user database there, never into the host tree (which may be the user's own ComfyUI).
    """
    link_pack(base / "custom_nodes")
    return base


def link_pack(custom_nodes: Path) -> bool:
    """Make `custom_nodes`/zsnr a link to this checkout (the one place the pack is linked into a
    host); True if the link was made or corrected."""
    custom_nodes.mkdir(parents=True, exist_ok=True)
    link = custom_nodes / "zsnr"
    if link.is_symlink() and link.resolve() == ROOT:
        return False
    if link.exists() or link.is_symlink():
        link.unlink()
    link.symlink_to(ROOT, target_is_directory=True)
    return True


class ServerFailed(RuntimeError):
    pass


class PromptRejected(RuntimeError):
    def __init__(self, status: int, body: dict | str):
        super().__init__(f"POST /prompt answered {status}: {json.dumps(body)[:2000]}")
        self.status = status
        self.body = body


class ComfyServer:
    """The real ComfyUI server as a subprocess; always stopped by `stop()` / the context manager."""

    def __init__(self, base_directory: Path, port: int | None = None, extra_args: tuple[str, ...] = ()):
        self.base_directory = private_base_directory(Path(base_directory))
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = self.base_directory / "server.log"
        self.extra_args = extra_args
        self.process: subprocess.Popen | None = None

    def start(self, timeout: float = 180.0) -> ComfyServer:
        host = host_path()
        cmd = [host_python(), "main.py", "--cpu", "--listen", "127.0.0.1", "--port", str(self.port),
               "--base-directory", str(self.base_directory), "--disable-auto-launch", *front_end_args(), *self.extra_args]
        self._log = open(self.log_path, "w")
        self.process = subprocess.Popen(cmd, cwd=host, stdout=self._log, stderr=subprocess.STDOUT,
                                        stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise ServerFailed(f"ComfyUI exited with {self.process.returncode} before serving:\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(self.url + "/system_stats", timeout=2):
                    return self
            except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
                time.sleep(0.5)
        self.stop()
        raise ServerFailed(f"ComfyUI did not answer on {self.url} within {timeout:.0f}s:\n{self.log_tail()}")

    def log_tail(self, lines: int = 60) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=15)
        if getattr(self, "_log", None):
            self._log.close()

    def client(self) -> ComfyClient:
        return ComfyClient(self.url)

    def __enter__(self) -> ComfyServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


class ComfyClient:
    def __init__(self, url: str):
        self.url = url.rstrip("/")
        self.client_id = uuid.uuid4().hex

    def request(self, method: str, path: str, body: bytes | None = None, timeout: float = 60,
                headers: dict | None = None) -> tuple[int, bytes]:
        req = urllib.request.Request(self.url + path, data=body, method=method, headers=headers or {})
        try:
            with urllib.request.urlopen(req, timeout=timeout) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as error:
            return error.code, error.read()

    def get_json(self, path: str, timeout: float = 60):
        status, body = self.request("GET", path, timeout=timeout)
        if status != 200:
            raise RuntimeError(f"GET {path} answered {status}: {body[:500]!r}")
        return json.loads(body)

    def post_json(self, path: str, payload) -> tuple[int, object]:
        status, body = self.request("POST", path, json.dumps(payload).encode(),
                                    headers={"Content-Type": "application/json"})
        try:
            return status, json.loads(body)
        except json.JSONDecodeError:
            return status, body.decode(errors="replace")

    def object_info(self) -> dict:
        return self.get_json("/object_info")

    def comfyui_version(self) -> str:
        """The server's own ComfyUI version (GET /system_stats, from its comfyui_version.py)."""
        return str(self.get_json("/system_stats")["system"]["comfyui_version"])

    def queue_prompt(self, graph: dict) -> str:
        status, body = self.post_json("/prompt", {"prompt": graph, "client_id": self.client_id})
        if status != 200:
            raise PromptRejected(status, body)
        return body["prompt_id"]

    def history(self, prompt_id: str) -> dict | None:
        return self.get_json(f"/history/{prompt_id}").get(prompt_id)

    def wait(self, prompt_id: str, timeout: float = 600) -> dict:
        """Poll /history until the prompt has finished (successfully or not); return its entry."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            entry = self.history(prompt_id)
            if entry and entry.get("status", {}).get("completed") is not None:
                return entry
            time.sleep(0.1)
        raise TimeoutError(f"prompt {prompt_id} not finished within {timeout:.0f}s")

    def run(self, graph: dict, timeout: float = 600,
            on_progress: Callable[[dict], None] | None = None, check: bool = True) -> dict:
        """Queue a prompt and follow it over the websocket (opened first, so no event is missed).

        on_progress receives every JSON event of this prompt (progress, executing, …). Returns the
        history entry; with check=True a failed prompt raises with the host's error messages.
        """
        import websocket  # websocket-client, installed by the bootstrap

        deadline = time.monotonic() + timeout
        ws = websocket.create_connection(
            self.url.replace("http://", "ws://") + f"/ws?clientId={self.client_id}", timeout=2)
        try:
            prompt_id = self.queue_prompt(graph)
            while time.monotonic() < deadline:
                try:
                    message = ws.recv()
                except websocket.WebSocketTimeoutException:
                    entry = self.history(prompt_id)
                    if entry and entry.get("status", {}).get("completed") is not None:
                        break
                    continue
                if not isinstance(message, str):
                    continue  # binary preview frames
                event = json.loads(message)
                data = event.get("data", {})
                if data.get("prompt_id") != prompt_id:
                    continue
                if on_progress:
                    on_progress(event)
                if event["type"] in ("execution_success", "execution_error", "execution_interrupted"):
                    break
        finally:
            ws.close()
        entry = self.wait(prompt_id, timeout=max(5.0, deadline - time.monotonic()))
        status = entry.get("status", {})
        if check and status.get("status_str") != "success":
            raise RuntimeError(f"prompt failed: {json.dumps(status.get('messages'))[:3000]}")
        return entry

    def view(self, image: dict) -> bytes:
        query = urllib.parse.urlencode({k: image.get(k, "") for k in ("filename", "subfolder", "type")})
        status, body = self.request("GET", "/view?" + query)
        if status != 200:
            raise RuntimeError(f"GET /view?{query} answered {status}")
        return body

    def output_images(self, entry: dict) -> list[tuple[str, dict]]:
        """(node id, image descriptor) for every image a finished prompt produced."""
        found = []
        for node_id, output in entry.get("outputs", {}).items():
            for image in output.get("images", []):
                found.append((node_id, image))
        return found

    def interrupt(self) -> None:
        self.request("POST", "/interrupt", b"")
