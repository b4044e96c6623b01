"""Registry at 10,000 cameras: p50/p95 latency of list, filter, search and get over HTTP.

Starts a real `videohub serve` process (embedded Valkey, ingest off: cameras are disabled so the
benchmark measures the registry, not 10,000 RTSP connections), registers N cameras through the
API, then times requests from this process. Prints one JSON line per operation.
Goal (issue 2): p95 <= 50 ms on the 2-core machine.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

LINES = ["public_security", "safety", "environment", "land_resources"]
AREAS = [
    "梅里镇中心",
    "梅里工业园",
    "鸿山片区",
    "新友村",
    "锡东片区",
    "伯渎港沿线",
    "九里河沿线",
    "望虞河沿线",
]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--cameras", type=int, default=10_000)
    parser.add_argument("--requests", type=int, default=200, help="timed requests per operation")
    parser.add_argument("--quick", action="store_true", help="2,000 cameras, 50 requests")
    args = parser.parse_args()
    if args.quick:
        args.cameras, args.requests = 2_000, 50

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    data = Path(tempfile.mkdtemp(prefix="vh-bench-"))
    env = {**os.environ, "VIDEOHUB_ADMIN_PASSWORD": "bench-admin-1", "VIDEOHUB_SERVER__LOG_LEVEL": "warning"}
    cmd = [sys.executable, "-m", "videohub.cli", "serve", "--workers", "1", "--port", str(port)]
    proc = subprocess.Popen([*cmd, "--data-dir", str(data)], env=env)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise SystemExit("service did not start")
            time.sleep(0.2)
        token = httpx.post(f"{base}/api/auth/login", json={"username": "admin", "password": "bench-admin-1"})
        headers = {"Authorization": f"Bearer {token.json()['access_token']}"}

        def register(i: int) -> None:
            body = {
                "id": f"cam-{i:05d}",
                "name": f"{AREAS[i % len(AREAS)]}{i}号点位",
                "line": LINES[i % len(LINES)],
                "area": AREAS[i % len(AREAS)],
                "enabled": False,
                "mode": "on_demand",
                "streams": {"main": {"url": f"rtsp://10.{i // 65536 % 256}.{i // 256 % 256}.{i % 256}/main"}},
            }
            client = getattr(local, "client", None)
            if client is None:  # one keep-alive connection per thread, as an importing tool would
                client = local.client = httpx.Client(base_url=base, headers=headers, timeout=30)
                clients.append(client)
            response = client.post("/api/cameras", json=body)
            assert response.status_code == 201, response.text

        local = threading.local()
        clients: list[httpx.Client] = []
        started = time.monotonic()
        with ThreadPoolExecutor(4) as pool:
            list(pool.map(register, range(args.cameras)))
        register_s = time.monotonic() - started
        for client in clients:
            client.close()

        operations = {
            "list_page": ("/api/cameras", {"limit": 50, "offset": 5000 % args.cameras}),
            "filter_line": ("/api/cameras", {"line": "safety", "limit": 50}),
            "filter_line_area": ("/api/cameras", {"line": "environment", "area": "鸿山片区", "limit": 50}),
            "search_q": ("/api/cameras", {"q": "新友村12", "limit": 50}),
            "get_one": ("/api/cameras/cam-04242", {}),
        }
        machine = {"cores": os.cpu_count(), "cpu": platform.processor() or platform.machine()}
        with httpx.Client(base_url=base, headers=headers, timeout=30) as client:
            for name, (path, params) in operations.items():
                if name == "get_one" and args.cameras <= 4242:
                    path = "/api/cameras/cam-00042"
                for _ in range(5):  # warm up
                    client.get(path, params=params)
                times = []
                for _ in range(args.requests):
                    t0 = time.perf_counter()
                    response = client.get(path, params=params)
                    times.append((time.perf_counter() - t0) * 1000)
                    assert response.status_code == 200
                print(
                    json.dumps(
                        {
                            "bench": "registry",
                            "op": name,
                            "cameras": args.cameras,
                            "requests": args.requests,
                            "p50_ms": round(statistics.median(times), 2),
                            "p95_ms": round(percentile(times, 0.95), 2),
                            "max_ms": round(max(times), 2),
                            "goal_p95_ms": 50,
                            "register_s": round(register_s, 1),
                            "machine": machine,
                        },
                        ensure_ascii=False,
                    ),
                    flush=True,
                )
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
    return 0


if __name__ == "__main__":
    sys.exit(main())
