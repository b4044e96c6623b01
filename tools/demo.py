"""Start the demo: camera simulator (16 cameras of four lines), videohub, and register the cameras.

Run by `tools/demo` (which installs everything first). Ctrl-C stops all of it.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import yaml

REPO = Path(__file__).resolve().parent.parent
OPERATOR = ("operator", "operator-demo-1")
MAINTENANCE = ("maint", "maint-demo-1")
LINE_ADMINS = {
    "ga_admin": "public_security",
    "aj_admin": "safety",
    "hb_admin": "environment",
    "gt_admin": "land_resources",
}
LINE_ADMIN_PASSWORD = "line-demo-1"


def start_simulator() -> tuple[subprocess.Popen[str], dict[str, Any]]:
    proc = subprocess.Popen(
        [
            "/usr/bin/python3",
            str(REPO / "tools" / "camsim"),
            "--port",
            "0",
            "--auth-port",
            "0",
            "--control-port",
            "0",
            "--preset",
            "demo",
        ],
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    assert proc.stdout is not None
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        try:
            event = json.loads(line)
        except json.JSONDecodeError:
            continue
        if event.get("event") == "ready":
            return proc, event
    proc.kill()
    raise SystemExit("camera simulator did not start (is gstreamer1.0-rtsp installed? run tools/setup)")


def start_service(port: int, data_dir: Path, admin_password: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "VIDEOHUB_ADMIN_PASSWORD": admin_password}
    return subprocess.Popen(
        [
            str(REPO / ".venv" / "bin" / "videohub"),
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--data-dir",
            str(data_dir),
        ],
        env=env,
        start_new_session=True,
    )


def wait_ready(base: str, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit("videohub exited during start-up; see its log above")
        try:
            if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise SystemExit("videohub did not become ready within 60 s")


def register(base: str, admin_password: str, rtsp: str) -> int:
    with httpx.Client(base_url=base, timeout=10) as client:
        token = client.post("/api/auth/login", json={"username": "admin", "password": admin_password})
        token.raise_for_status()
        client.headers["Authorization"] = f"Bearer {token.json()['access_token']}"
        users = [
            {"username": OPERATOR[0], "password": OPERATOR[1], "role": "operator"},
            {"username": MAINTENANCE[0], "password": MAINTENANCE[1], "role": "maintenance"},
        ] + [
            {"username": name, "password": LINE_ADMIN_PASSWORD, "role": "line_admin", "line": line}
            for name, line in LINE_ADMINS.items()
        ]
        for user in users:
            response = client.post("/api/users", json=user)
            if response.status_code not in (201, 409):
                response.raise_for_status()
        cameras = yaml.safe_load((REPO / "config" / "demo-cameras.yaml").read_text(encoding="utf-8"))[
            "cameras"
        ]
        created = 0
        for cam in cameras:
            streams: dict[str, Any] = {"main": {"url": f"{rtsp}/{cam['mount']}"}}
            if cam.get("sub"):
                streams["sub"] = {"url": f"{rtsp}/{cam['sub']}"}
            body = {
                "id": cam["id"],
                "name": cam["name"],
                "line": cam["line"],
                "area": cam["area"],
                "mode": cam["mode"],
                "streams": streams,
                "location": {"lat": cam["lat"], "lon": cam["lon"]},
                "vendor": "camsim",
                "tags": ["演示"],
            }
            response = client.post("/api/cameras", json=body)
            if response.status_code == 409:  # a second run on the same data dir: refresh the URLs
                body.pop("id")
                client.patch(f"/api/cameras/{cam['id']}", json=body).raise_for_status()
            else:
                response.raise_for_status()
                created += 1
        return created


def main() -> int:
    parser = argparse.ArgumentParser(description="videohub demo")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--data-dir", type=Path, default=REPO / "data" / "demo")
    parser.add_argument("--admin-password", default=os.environ.get("VIDEOHUB_ADMIN_PASSWORD", "admin-demo-1"))
    args = parser.parse_args()

    sim, ready = start_simulator()
    service = start_service(args.port, args.data_dir, args.admin_password)
    procs: list[subprocess.Popen[Any]] = [service, sim]

    def stop(*_: object) -> None:
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()

    def on_term(*_: object) -> None:
        raise SystemExit(0)  # unwinds into the finally below, which stops both processes

    signal.signal(signal.SIGTERM, on_term)
    base = f"http://127.0.0.1:{args.port}"
    try:
        wait_ready(base, service)
        created = register(base, args.admin_password, ready["rtsp"])
        print(
            f"\nvideohub demo is running: {len(ready['mounts'])} simulated cameras, "
            f"{created} newly registered\n"
            f"  wall console:  {base}/          operator / {OPERATOR[1]}\n"
            f"  health:        {base}/health    {MAINTENANCE[0]} / {MAINTENANCE[1]}\n"
            f"  registry:      {base}/registry  ga_admin (公安) aj_admin hb_admin gt_admin"
            f" / {LINE_ADMIN_PASSWORD}\n"
            f"  admin:         admin / {args.admin_password}     API docs: {base}/docs\n"
            "Press Ctrl-C to stop.\n",
            flush=True,
        )
        while all(proc.poll() is None for proc in procs):
            time.sleep(0.5)
        print("a demo process exited; stopping", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        stop()


if __name__ == "__main__":
    sys.exit(main())
