"""Many /ws clients on one real service: one Redis pub/sub per process, so the API and playback go on.

Each /ws connection used to hold its own Redis pub/sub connection; redis-py's pool allows 100 and
then raises, so ~100 open pages took the API down (500s, /readyz "unreachable").
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect

from tests.faults.support import FrameCounter, close_code, live_client, next_message, of_type, ws_url
from tests.fixtures.camsim import CameraSimulator
from tests.fixtures.service import VideohubService

CLIENTS = 150
USERS = 10  # 15 sockets each: under the per-user cap of 20


async def _open_all(svc: VideohubService, tokens: list[str], topics: list[str]) -> list[ClientConnection]:
    clients: list[ClientConnection] = []
    for batch in range(0, CLIENTS, 25):
        clients += await asyncio.gather(
            *(live_client(svc, tokens[i % len(tokens)], topics) for i in range(batch, batch + 25))
        )
    return clients


@pytest.mark.media
async def test_150_live_clients_leave_the_api_and_playback_working(
    videohub_service_factory: Callable[..., VideohubService], camsim: CameraSimulator
) -> None:
    svc = await asyncio.to_thread(videohub_service_factory)
    tag = uuid.uuid4().hex[:6]
    camera_id, wall_id = f"fan{tag}", f"w{tag}"
    svc.create_camera(camera_id, camsim.rtsp_url("main", {"cam": camera_id}), mode="always_on")
    tokens = [svc.create_user(f"wall{tag}{i}", "maintenance") for i in range(USERS)]
    operator = svc.create_user(f"op{tag}", "operator")
    clients: list[ClientConnection] = []
    async with httpx.AsyncClient(base_url=svc.base_url, timeout=30) as http:
        try:
            clients = await _open_all(svc, tokens, [f"wall:{wall_id}", "alerts", "health"])
            for i, ws in enumerate(clients):
                try:
                    await next_message(ws, of_type("ready"))
                    await next_message(ws, of_type("wall"))
                except Exception as exc:
                    pytest.fail(f"client {i}: no ready+wall ({type(exc).__name__}, close {ws.close_code})")

            # With all 150 open, the API and a WHEP viewer work.
            me = await http.get("/api/auth/me", headers=svc.auth(operator))
            cameras = await http.get("/api/cameras", headers=svc.auth())
            ready = await http.get("/readyz")
            assert (me.status_code, cameras.status_code, ready.status_code) == (200, 200, 200), (
                me.text,
                cameras.text,
                ready.text,
            )
            player = await FrameCounter.play(http, operator, camera_id)
            try:
                await player.wait_frames(10)
            finally:
                await player.close()

            # A wall change reaches every one of them.
            body = {"layout": "9", "tiles": [{"camera_id": camera_id}]}
            put = await http.put(f"/api/walls/{wall_id}", json=body, headers=svc.auth(operator))
            assert put.status_code == 200, put.text

            def changed(message: dict[str, Any]) -> bool:
                return message.get("type") == "wall" and message["wall"]["layout"] == "9"

            got = await asyncio.gather(*(next_message(ws, changed) for ws in clients), return_exceptions=True)
            missed = [i for i, result in enumerate(got) if isinstance(result, BaseException)]
            assert not missed, f"{len(missed)} of {CLIENTS} clients did not get the wall change"
        finally:
            await asyncio.gather(*(ws.close() for ws in clients), return_exceptions=True)


async def test_ws_limits_close_with_the_documented_codes(
    videohub_service_factory: Callable[..., VideohubService],
) -> None:
    # A total cap of 25 for this service; 20 per user (the default).
    svc = await asyncio.to_thread(videohub_service_factory, {"VIDEOHUB_WS__MAX_CONNECTIONS": "25"})
    tag = uuid.uuid4().hex[:6]
    alice = svc.create_user(f"alice{tag}", "operator")
    bob = svc.create_user(f"bob{tag}", "operator")
    opened: list[ClientConnection] = []
    try:
        for _ in range(20):
            opened.append(await live_client(svc, alice, ["presets"]))
            await next_message(opened[-1], of_type("ready"))
        # The 21st socket of one user is closed with 4429.
        over_user = await live_client(svc, alice, ["presets"])
        assert await close_code(over_user) == 4429

        for _ in range(5):
            opened.append(await live_client(svc, bob, ["presets"]))
            await next_message(opened[-1], of_type("ready"))
        # 25 open: the next socket is closed with 1013 (try again later) before it may authenticate.
        over_total = await connect(ws_url(svc))
        assert await close_code(over_total) == 1013

        # Closed sockets give their places back.
        for ws in opened[:5]:
            await ws.close()
        del opened[:5]
        await asyncio.sleep(0.5)
        opened.append(await live_client(svc, bob, ["presets"]))
        await next_message(opened[-1], of_type("ready"))
        opened.append(await live_client(svc, alice, ["presets"]))
        await next_message(opened[-1], of_type("ready"))
    finally:
        await asyncio.gather(*(ws.close() for ws in opened), return_exceptions=True)

    # A message over 4 KiB closes the socket with 1009 (message too big).
    big = await live_client(svc, alice, ["presets"])
    await next_message(big, of_type("ready"))
    await big.send(json.dumps({"type": "subscribe", "topics": ["x" * 5000]}))
    assert await close_code(big) == 1009

    # More than 20 messages in a second closes it with 1008 (policy violation).
    flood = await live_client(svc, alice, ["presets"])
    await next_message(flood, of_type("ready"))
    with contextlib.suppress(Exception):
        for _ in range(200):
            await flood.send(json.dumps({"type": "ping"}))
    assert await close_code(flood) == 1008

    # A calm client is not affected by the others' closes.
    calm = await connect(ws_url(svc))
    try:
        await calm.send(json.dumps({"type": "auth", "token": bob}))
        await next_message(calm, of_type("ready"))
        await calm.send(json.dumps({"type": "ping"}))
        assert await next_message(calm, of_type("pong")) == {"type": "pong"}
    finally:
        await calm.close()
