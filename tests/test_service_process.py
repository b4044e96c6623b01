"""The real `videohub serve` process: durability across a restart, SIGTERM, logs without secrets."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

SECRET = "Cam-Pa55-9f3e"
ADMIN_PASSWORD = "admin-pass-123"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class Service:
    def __init__(self, data_dir: Path, log: Path) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        env = {
            **os.environ,
            "VIDEOHUB_ADMIN_PASSWORD": ADMIN_PASSWORD,
            "VIDEOHUB_SERVER__LOG_JSON": "true",
            "VIDEOHUB_SERVER__LOG_LEVEL": "debug",
        }
        self.log = log
        sink = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
        try:
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "videohub.cli",
                    "serve",
                    "--port",
                    str(self.port),
                    "--data-dir",
                    str(data_dir),
                ],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=sink,
            )
        finally:
            os.close(sink)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, log.read_text()
            try:
                if httpx.get(f"{self.base}/readyz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.2)
        raise AssertionError("service did not become ready")

    def login(self, username: str, password: str) -> dict[str, str]:
        response = httpx.post(
            f"{self.base}/api/auth/login", json={"username": username, "password": password}
        )
        assert response.status_code == 200, response.text
        return {"Authorization": f"Bearer {response.json()['access_token']}"}

    def stop(self) -> int:
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=30)


def test_restart_keeps_cameras_and_users_and_logs_hold_no_secrets(tmp_path: Path) -> None:
    data, log = tmp_path / "data", tmp_path / "service.log"
    service = Service(data, log)
    try:
        admin = service.login("admin", ADMIN_PASSWORD)
        camera = {
            "id": "gt-river-1",
            "name": "望虞河岸线",
            "line": "land_resources",
            "area": "望虞河沿线",
            # Nothing listens on port 9: ingest keeps retrying and logging the failure.
            "streams": {"main": {"url": f"rtsp://admin:{SECRET}@127.0.0.1:9/live"}},
        }
        assert httpx.post(f"{service.base}/api/cameras", json=camera, headers=admin).status_code == 201
        user = {
            "username": "gt_admin",
            "password": "gt-pass-123",
            "role": "line_admin",
            "line": "land_resources",
        }
        assert httpx.post(f"{service.base}/api/users", json=user, headers=admin).status_code == 201
        token = admin["Authorization"].split()[1]
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:  # let ingest try (and log) a few times
            ingest = httpx.get(f"{service.base}/api/cameras/gt-river-1/ingest", headers=admin).json()
            if any(s.get("reconnects", 0) or s.get("failures", 0) for s in ingest.get("streams", [])):
                break
            time.sleep(0.5)
    finally:
        assert service.stop() == 0  # SIGTERM is a clean shutdown

    text = log.read_text(encoding="utf-8")
    assert "127.0.0.1:9" in text  # the camera's failures were logged...
    assert SECRET not in text and token not in text and "gt-pass-123" not in text  # ...without secrets
    assert "embedded valkey stopped" in text
    for line in text.splitlines():
        if line.startswith("{"):
            json.loads(line)  # JSON log lines are valid JSON

    again = Service(data, log)
    try:
        admin = again.login("admin", ADMIN_PASSWORD)
        cam = httpx.get(f"{again.base}/api/cameras/gt-river-1", headers=admin).json()
        assert cam["name"] == "望虞河岸线" and cam["has_credentials"] is True
        lines_admin = again.login("gt_admin", "gt-pass-123")
        listing = httpx.get(f"{again.base}/api/cameras", headers=lines_admin).json()
        assert [c["id"] for c in listing["items"]] == ["gt-river-1"]
    finally:
        assert again.stop() == 0
