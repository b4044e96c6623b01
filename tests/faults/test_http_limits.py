"""Hostile HTTP clients against a real ``videohub serve``: huge bodies, slowloris, idle, full servers.

Every test runs against the service's default limits (``server.limits``): 16 KiB for login, 1 MiB for
JSON, 5 MiB for the CSV import, 64 KiB for SDP; 10 s to send headers, 5 s keep-alive, 30 s for a body;
1,000 connections and 256 requests at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import resource
import socket
import statistics
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from websockets.sync.client import connect as ws_connect

from tests.faults.rawhttp import chunked, exchange, plain, rss_bytes, wait_closed
from tests.fixtures.service import VideohubService

HUNDRED_MB = 100 * 1024 * 1024
HEADER_TIMEOUT = 10.0
KEEPALIVE_TIMEOUT = 5.0
BODY_TIMEOUT = 30.0
SLACK = 10.0  # a loaded 2-core machine: the server's timers fire late, never early


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[VideohubService]:
    # Access logs off: hundreds of refused sockets would otherwise fill the test's log buffer.
    with VideohubService(
        tmp_path_factory.mktemp("limits"), env={"VIDEOHUB_SERVER__LOG_LEVEL": "warning"}
    ) as svc:
        yield svc


@pytest.fixture(scope="module", autouse=True)
def many_sockets() -> Iterator[None]:
    """This test process opens ~1,000 sockets at once: lift its own soft descriptor limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 8192) if hard > 0 else soft, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def pid_of(service: VideohubService) -> int:
    pid: int = service._proc.pid  # Popen runs .venv/bin/videohub: the Python process itself
    return pid


def head(method: str, path: str, headers: dict[str, str]) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", *(f"{k}: {v}" for k, v in headers.items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def test_100_mb_bodies_are_refused_before_they_are_read(service: VideohubService) -> None:
    token = service.admin_token
    bearer = {"Authorization": f"Bearer {token}"}
    cases = [
        # (method, path, headers, chunked?, the limit the 413 must name)
        ("POST", "/api/auth/login", {"Content-Type": "application/json"}, False, "16 KiB"),
        ("POST", "/api/auth/login", {"Content-Type": "application/json"}, True, "16 KiB"),
        ("POST", "/api/cameras/import", {**bearer, "Content-Type": "text/csv"}, False, "5 MiB"),
        ("POST", "/api/cameras/import", {**bearer, "Content-Type": "text/csv"}, True, "5 MiB"),
        ("POST", "/api/cameras", {**bearer, "Content-Type": "application/json"}, True, "1 MiB"),
        ("POST", "/whep/any-camera", {**bearer, "Content-Type": "application/sdp"}, False, "64 KiB"),
    ]
    # Warm up the code paths (imports, first allocations) before the baseline.
    assert service.http.post("/api/auth/login", json={"username": "admin", "password": "x"}).status_code
    pid = pid_of(service)
    before, peak_before = rss_bytes(pid), rss_bytes(pid, "VmHWM")
    responses = []
    for method, path, headers, is_chunked, _ in cases:
        if is_chunked:
            hdrs = {**headers, "Transfer-Encoding": "chunked"}
            responses.append(exchange(service.port, head(method, path, hdrs), chunked(HUNDRED_MB)))
        else:
            hdrs = {**headers, "Content-Length": str(HUNDRED_MB)}
            responses.append(exchange(service.port, head(method, path, hdrs), plain(HUNDRED_MB)))
    # VmRSS now, and VmHWM: a body read whole and freed again leaves its mark on the peak.
    grown, peak_grown = rss_bytes(pid) - before, rss_bytes(pid, "VmHWM") - peak_before
    mb = {"rss_before": before, "rss_growth": grown, "peak_rss_growth": peak_grown}
    print(json.dumps({f"{k}_mb": round(v / 2**20, 2) for k, v in mb.items()}))
    assert grown < 8 * 1024 * 1024, f"service RSS grew by {grown / 2**20:.1f} MB"
    # The peak may hold one CSV at its 5 MiB limit, which the import legitimately buffers.
    assert peak_grown < 16 * 1024 * 1024, f"service peak RSS grew by {peak_grown / 2**20:.1f} MB"
    for (method, path, _, is_chunked, named), response in zip(cases, responses, strict=True):
        case = f"{method} {path} chunked={is_chunked}"
        assert response.status == 413, f"{case}: {response.status} {response.body[:300]!r}"
        detail = response.json()["detail"]
        assert detail[0]["loc"] == ["body"] and named in detail[0]["msg"], (case, detail)
        assert response.headers.get("connection") == "close", case
        if is_chunked:  # stopped at the limit, not at the end of the 100 MB
            assert response.body_bytes_sent < 32 * 1024 * 1024, (case, response.body_bytes_sent)
        else:  # refused from the header alone, before a single body byte
            assert response.answered_before_body, case
    # The service is fine afterwards.
    assert service.http.get("/api/auth/me", headers=bearer).status_code == 200


async def test_slowloris_sockets_are_closed_while_the_api_answers(service: VideohubService) -> None:
    """500 sockets that never finish their headers (400 drip a byte every 2 s, 100 stay silent)."""
    dripping, silent = 400, 100
    closed_after: list[float] = []
    stop = asyncio.Event()

    async def slow_client(drip: bool) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", service.port)
        opened = time.monotonic()
        try:
            if drip:
                writer.write(b"GET /api/auth/me HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
            while not stop.is_set():
                if drip:
                    writer.write(b"a")
                    await writer.drain()
                try:
                    async with asyncio.timeout(2.0):
                        if not await reader.read(65536):
                            break  # EOF: the server closed us (after a 408, or silently)
                except TimeoutError:
                    continue
            else:
                return
        except (ConnectionError, OSError):
            pass  # reset by the server: closed too
        finally:
            writer.close()
        closed_after.append(time.monotonic() - opened)

    tasks = [asyncio.create_task(slow_client(i < dripping)) for i in range(dripping + silent)]
    latencies: list[float] = []
    statuses: list[int] = []
    async with httpx.AsyncClient(base_url=service.base_url, headers=service.auth(), timeout=30) as client:
        deadline = time.monotonic() + HEADER_TIMEOUT + SLACK
        while time.monotonic() < deadline and len(closed_after) < len(tasks):
            start = time.monotonic()
            response = await client.get("/api/cameras")
            latencies.append(time.monotonic() - start)
            statuses.append(response.status_code)
            await asyncio.sleep(0.1)
    stop.set()
    await asyncio.gather(*tasks, return_exceptions=True)
    latencies.sort()
    report = {
        "slow_sockets": len(tasks),
        "closed": len(closed_after),
        "closed_after_s": [round(min(closed_after, default=0), 1), round(max(closed_after, default=0), 1)],
        "api_requests": len(latencies),
        "api_latency_ms": {
            "p50": round(statistics.median(latencies) * 1000, 1),
            "p95": round(latencies[int(len(latencies) * 0.95)] * 1000, 1),
            "max": round(latencies[-1] * 1000, 1),
        },
    }
    print(json.dumps(report))
    assert set(statuses) == {200}, statuses
    assert len(closed_after) == len(tasks), report
    assert max(closed_after) < HEADER_TIMEOUT + SLACK, report


def test_idle_keep_alive_connection_is_closed(service: VideohubService) -> None:
    with socket.create_connection(("127.0.0.1", service.port)) as sock:
        sock.sendall(head("GET", "/healthz", {}))
        time.sleep(0.5)
        assert sock.recv(65536).startswith(b"HTTP/1.1 200")
        closed = wait_closed(sock, KEEPALIVE_TIMEOUT + SLACK)
    assert closed is not None, "an idle keep-alive connection stayed open"


def test_body_dripped_a_byte_at_a_time_gets_408(service: VideohubService) -> None:
    with socket.create_connection(("127.0.0.1", service.port)) as sock:
        sock.sendall(
            head("POST", "/api/auth/login", {"Content-Type": "application/json", "Content-Length": "400"})
        )
        started = time.monotonic()
        data = b""
        sock.settimeout(2.0)
        while time.monotonic() - started < BODY_TIMEOUT + SLACK:
            with contextlib.suppress(OSError):
                sock.sendall(b" ")
            try:
                chunk = sock.recv(65536)
            except TimeoutError:
                continue
            except OSError:
                break
            if not chunk:
                break
            data += chunk
    assert data.startswith(b"HTTP/1.1 408"), data[:200]
    assert b"body_timeout" in data


def _held_request(port: int) -> socket.socket:
    """A request inside the app: headers complete, body promised but never finished."""
    sock = socket.create_connection(("127.0.0.1", port))
    sock.sendall(
        head("POST", "/api/auth/login", {"Content-Type": "application/json", "Content-Length": "100"})
    )
    sock.sendall(b'{"username": ')
    return sock


def test_full_server_answers_503_with_retry_after(service: VideohubService) -> None:
    held = [_held_request(service.port) for _ in range(256)]
    try:
        time.sleep(1.0)  # let the server accept them all
        response = service.http.get("/api/auth/me", headers=service.auth())
        assert response.status_code == 503, response.text
        assert int(response.headers["retry-after"]) >= 1
        assert "server.limits.max_requests" in response.json()["detail"]
        # Liveness still answers (a busy service is alive), and so do pages' WebSockets.
        assert service.http.get("/healthz").status_code == 200
        with ws_connect(f"ws://127.0.0.1:{service.port}/ws") as ws:
            ws.send(json.dumps({"type": "auth", "token": service.admin_token}))
            assert json.loads(ws.recv(timeout=10))["type"] == "ready"
    finally:
        for sock in held:
            sock.close()
    time.sleep(1.0)
    assert service.http.get("/api/auth/me", headers=service.auth()).status_code == 200


def test_too_many_connections_answer_503_with_retry_after(service: VideohubService) -> None:
    idle = [socket.create_connection(("127.0.0.1", service.port)) for _ in range(1000)]
    try:
        time.sleep(1.0)  # accepted by the server, well within the header timeout
        with socket.create_connection(("127.0.0.1", service.port)) as sock:
            sock.sendall(head("GET", "/api/auth/me", {"Authorization": f"Bearer {service.admin_token}"}))
            sock.settimeout(10)
            data = b""
            with contextlib.suppress(OSError):
                while chunk := sock.recv(65536):
                    data += chunk
        assert data.startswith(b"HTTP/1.1 503"), data[:300]
        assert b"retry-after: 2" in data.lower() and b"max_connections" in data
        # The live-event WebSocket of a page still opens.
        with ws_connect(f"ws://127.0.0.1:{service.port}/ws") as ws:
            ws.send(json.dumps({"type": "auth", "token": service.admin_token}))
            assert json.loads(ws.recv(timeout=10))["type"] == "ready"
        for sock in idle[:50]:
            sock.close()
        time.sleep(1.0)
        with httpx.Client(base_url=service.base_url) as fresh:
            assert fresh.get("/api/auth/me", headers=service.auth()).status_code == 200
    finally:
        for sock in idle:
            sock.close()


def test_soft_open_files_limit_is_raised_to_the_hard_limit(tmp_path: Path) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    lowered = min(1024, hard)
    resource.setrlimit(resource.RLIMIT_NOFILE, (lowered, hard))
    try:
        svc = VideohubService(tmp_path / "data", env={"VIDEOHUB_SERVER__LOG_LEVEL": "warning"})
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    with svc:
        limits = Path(f"/proc/{pid_of(svc)}/limits").read_text()
    line = next(row for row in limits.splitlines() if row.startswith("Max open files"))
    service_soft, service_hard = line.split()[3:5]
    assert service_hard == str(hard) or hard == resource.RLIM_INFINITY
    assert service_soft == service_hard, line
