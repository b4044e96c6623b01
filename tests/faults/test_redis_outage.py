"""An external Redis stopped for 20 s under a real service: 503s with Retry-After, /ws stays, all recovers.

The external Valkey is started by the test with AOF on and a password (``requirepass``), so the same
run also checks that the password in ``VIDEOHUB_REDIS_URL`` never reaches the service's log.
"""

from __future__ import annotations

import asyncio
import re
import secrets
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx

from tests.faults.support import PasswordRedis, close_code, live_client, next_message, of_type
from tests.fixtures.service import VideohubService, free_port

CAMERAS = 20
SDP = "application/sdp"
OUTAGE_SECONDS = 20.0


def _mix(tag: str, camera_id: str, wall_id: str) -> list[tuple[str, str, dict[str, Any]]]:
    body = {
        "id": f"new{tag}",
        "name": "新摄像头",
        "line": "public_security",
        "area": "梅里镇",
        "mode": "on_demand",
        "streams": {"main": {"url": "rtsp://127.0.0.1:9/new"}},
    }
    return [
        ("GET", "/api/auth/me", {}),
        ("GET", "/api/lines", {}),
        ("GET", "/api/cameras", {}),
        ("GET", f"/api/cameras/{camera_id}", {}),
        ("GET", f"/api/cameras/{camera_id}/ingest", {}),
        ("GET", f"/api/cameras/{camera_id}/snapshot.jpg", {}),
        ("POST", f"/whep/{camera_id}", {"content": "v=0\r\n", "headers": {"Content-Type": SDP}}),
        ("GET", "/api/sessions", {}),
        ("POST", "/api/cameras", {"json": body}),
        ("PATCH", f"/api/cameras/{camera_id}", {"json": {"name": "改名"}}),
        ("GET", f"/api/walls/{wall_id}", {}),
        ("PUT", f"/api/walls/{wall_id}", {"json": {"layout": "4"}}),
        ("GET", "/api/presets", {}),
        ("POST", "/api/presets", {"json": {"name": "夜间", "wall": {"layout": "4"}}}),
        ("GET", "/api/alerts", {}),
        ("GET", "/api/health/cameras", {}),
        ("GET", "/api/health/lines", {}),
        ("GET", "/api/users", {}),
        ("GET", "/api/audit", {}),
        ("POST", "/api/auth/login", {"json": {"username": "admin", "password": "admin-pass-123"}}),
        ("GET", "/readyz", {}),
    ]


async def test_an_external_redis_outage_answers_503_keeps_ws_and_recovers(
    videohub_service_factory: Callable[..., VideohubService], tmp_path: Path
) -> None:
    port, password = free_port(), f"rd-{secrets.token_hex(8)}"
    servers = [PasswordRedis(tmp_path / "redis", port, password)]

    async def stop() -> None:
        await asyncio.to_thread(servers[-1].stop)

    async def start_again() -> None:  # the same port and data dir: what an operator's restart does
        servers.append(PasswordRedis(tmp_path / "redis", port, password))
        await asyncio.to_thread(servers[-1].start)

    await asyncio.to_thread(servers[0].start)
    try:
        env = {
            "VIDEOHUB_REDIS_URL": f"redis://:{password}@127.0.0.1:{port}/0",
            "VIDEOHUB_SERVER__LOG_LEVEL": "debug",
        }
        svc = await asyncio.to_thread(videohub_service_factory, env)
        await _outage(svc, stop, start_again)
        log = svc.log_text(tail=None)
        assert password not in log, "the Redis password reached the log"
    finally:
        for server in servers:
            if server.is_running():
                await asyncio.to_thread(server.stop)


async def _outage(
    svc: VideohubService, stop: Callable[[], Awaitable[None]], start_again: Callable[[], Awaitable[None]]
) -> None:
    tag = uuid.uuid4().hex[:6]
    cameras = [f"o{tag}{i}" for i in range(CAMERAS)]
    for camera_id in cameras:
        svc.create_camera(camera_id, f"rtsp://127.0.0.1:9/{camera_id}", mode="on_demand")
    operator = svc.create_user(f"op{tag}", "operator")
    wall_id = f"w{tag}"
    svc.call("PUT", f"/api/walls/{wall_id}", token=operator, json={"layout": "9"})

    ws = await live_client(svc, operator, [f"wall:{wall_id}", "alerts", "health"])
    await next_message(ws, of_type("ready"))
    assert (await next_message(ws, of_type("wall")))["wall"]["layout"] == "9"
    await asyncio.sleep(1.5)  # past the AOF's one-second fsync window

    log_before = len(svc.log_text(tail=None))
    await stop()  # graceful: the AOF is flushed
    down = await next_message(ws, of_type("degraded"), within=10)
    assert down == {"type": "degraded", "redis": "unreachable"}

    statuses: Counter[tuple[str, int]] = Counter()
    missing_retry_after: list[str] = []
    async with httpx.AsyncClient(base_url=svc.base_url, timeout=15) as http:
        started = time.monotonic()
        while time.monotonic() - started < OUTAGE_SECONDS:
            for method, path, kwargs in _mix(tag, cameras[0], wall_id):
                headers = {**svc.auth(operator), **kwargs.pop("headers", {})}
                response = await http.request(method, path, headers=headers, **kwargs)
                statuses[(path, response.status_code)] += 1
                if response.status_code == 503 and "retry-after" not in response.headers:
                    missing_retry_after.append(path)
            # The socket is still there and answers.
            await ws.send('{"type":"ping"}')
            await next_message(ws, of_type("pong"), within=5)
            # A new socket cannot authenticate now: told 503, closed with 1013 (try again later).
            late = await live_client(svc, operator, ["presets"])
            assert (await next_message(late, of_type("error")))["status"] == 503
            assert await close_code(late) == 1013
        log_outage = svc.log_text(tail=None)[log_before:]

        bad = {key: n for key, n in statuses.items() if key[1] != 503}
        assert not bad, f"not 503 during the outage: {bad}"
        assert not missing_retry_after, f"503 without Retry-After: {set(missing_retry_after)}"
        warnings = [
            line for line in log_outage.splitlines() if re.search(r" (WARNING|ERROR|CRITICAL) ", line)
        ]
        assert len(warnings) <= 40, "log flood during the outage:\n" + "\n".join(warnings[-60:])

        await start_again()
        try:
            up = await next_message(ws, of_type("degraded"), within=15)
            assert up == {"type": "degraded", "redis": "ok"}
            # The wall is re-sent after the recovery, and later changes arrive again.
            assert (await next_message(ws, of_type("wall")))["wall"]["id"] == wall_id
            deadline = time.monotonic() + 10
            while (await http.get("/readyz")).status_code != 200:
                assert time.monotonic() < deadline, "/readyz did not recover"
                await asyncio.sleep(0.2)
            listed = await http.get("/api/cameras?limit=500", headers=svc.auth())
            assert listed.status_code == 200, listed.text
            assert set(cameras) <= {camera["id"] for camera in listed.json()["items"]}
            put = await http.put(f"/api/walls/{wall_id}", json={"layout": "16"}, headers=svc.auth(operator))
            assert put.status_code == 200, put.text
            changed = await next_message(ws, lambda m: m.get("type") == "wall" and m["wall"]["id"] == wall_id)
            assert changed["wall"]["layout"] == "16"

            # The hub follows the registry again, health and alerts flow again: a new camera that
            # refuses connections goes offline and opens an alert, pushed to the socket.
            dead = f"dead{tag}"
            svc.create_camera(dead, "rtsp://127.0.0.1:9/live", mode="always_on")
            # Health and alert events come from two streams: either may arrive first.
            about_dead: dict[str, dict[str, Any]] = {}
            async with asyncio.timeout(30):
                while len(about_dead) < 2:
                    message = await next_message(
                        ws,
                        lambda m: (
                            (m.get("type") == "health" and m["camera"] == dead)
                            or (m.get("type") == "alert" and m["alert"]["camera"] == dead)
                        ),
                        within=30,
                    )
                    about_dead.setdefault(message["type"], message)
            assert about_dead["health"]["new"] == "offline"
            assert about_dead["alert"]["event"] == "opened"
            assert svc.running  # recovered without a restart of the service
        finally:
            await ws.close()
