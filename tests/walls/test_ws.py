"""/ws on the real service: auth first, the current wall on subscribe, every change pushed."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from tests.fixtures.camsim import CameraSimulator
from tests.fixtures.service import VideohubService


def _ws_url(service: VideohubService) -> str:
    return service.base_url.replace("http://", "ws://") + "/ws"


def _next(ws: ClientConnection, kind: str, timeout: float = 10.0) -> dict[str, Any]:
    while True:
        message: dict[str, Any] = json.loads(ws.recv(timeout=timeout))
        if message["type"] == kind:
            return message


def test_without_auth_the_socket_is_refused(videohub_service: VideohubService) -> None:
    with connect(_ws_url(videohub_service)) as ws:
        ws.send(json.dumps({"type": "subscribe", "topics": ["wall:main"]}))
        assert json.loads(ws.recv(timeout=10))["status"] == 401
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=10)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 4401
    with connect(_ws_url(videohub_service)) as ws:
        ws.send(json.dumps({"type": "auth", "token": "not-a-token"}))
        assert json.loads(ws.recv(timeout=10))["status"] == 401


def test_a_follower_gets_the_wall_and_its_changes(videohub_service: VideohubService) -> None:
    svc = videohub_service
    wall_id = f"w{uuid.uuid4().hex[:8]}"
    camera_id = f"c{uuid.uuid4().hex[:8]}"
    svc.create_camera(camera_id, "rtsp://127.0.0.1:9/none", mode="on_demand")
    operator = svc.create_user(f"op{uuid.uuid4().hex[:6]}", "operator")
    viewer = svc.create_user(f"mt{uuid.uuid4().hex[:6]}", "maintenance")
    try:
        _follow(svc, wall_id, camera_id, operator, viewer)
    finally:
        svc.request("DELETE", f"/api/cameras/{camera_id}")


def _follow(svc: VideohubService, wall_id: str, camera_id: str, operator: str, viewer: str) -> None:
    with connect(_ws_url(svc)) as ws:
        ws.send(json.dumps({"type": "auth", "token": viewer}))
        ws.send(json.dumps({"type": "subscribe", "topics": [f"wall:{wall_id}", "alerts", "health"]}))
        assert _next(ws, "ready")["user"]["role"] == "maintenance"
        first = _next(ws, "wall")["wall"]
        assert first["id"] == wall_id and first["version"] == 0
        body = {"layout": "9", "tiles": [{"camera_id": camera_id}]}
        svc.call("PUT", f"/api/walls/{wall_id}", token=operator, json=body)
        changed = _next(ws, "wall")["wall"]
        assert changed["layout"] == "9" and changed["tiles"][0]["camera_id"] == camera_id
        # Another wall's change is not this follower's business.
        svc.call("PUT", f"/api/walls/{wall_id}x", token=operator, json={"layout": "1"})
        svc.call("PUT", f"/api/walls/{wall_id}", token=operator, json={"layout": "16"})
        assert _next(ws, "wall")["wall"]["layout"] == "16"


def test_consoles_hear_when_the_preset_list_changes(videohub_service: VideohubService) -> None:
    svc = videohub_service
    operator = svc.create_user(f"op{uuid.uuid4().hex[:6]}", "operator")
    with connect(_ws_url(svc)) as ws, connect(_ws_url(svc)) as other:
        ws.send(json.dumps({"type": "auth", "token": operator}))
        ws.send(json.dumps({"type": "subscribe", "topics": ["presets"]}))
        other.send(json.dumps({"type": "auth", "token": operator}))
        other.send(json.dumps({"type": "subscribe", "topics": ["health"]}))
        _next(ws, "ready")
        _next(other, "ready")
        body = {"name": "夜间巡查", "wall": {"layout": "4"}}
        preset = svc.call("POST", "/api/presets", token=operator, json=body, expect=201)
        assert _next(ws, "presets") == {"type": "presets"}
        svc.call("DELETE", f"/api/presets/{preset['id']}", token=operator, expect=204)
        assert _next(ws, "presets") == {"type": "presets"}
        # Sockets that did not subscribe to the topic are not told.
        with pytest.raises(TimeoutError):
            _next(other, "presets", timeout=1.0)


def _drain_until(ws: ClientConnection, pred: Any, timeout: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError("expected message not received")
        message: dict[str, Any] = json.loads(ws.recv(timeout=left))
        if pred(message):
            return message


@pytest.mark.media
def test_health_and_alerts_reach_only_the_cameras_line(
    videohub_service: VideohubService, camsim: CameraSimulator
) -> None:
    svc = videohub_service
    tag = uuid.uuid4().hex[:6]
    mount = camsim.fresh_mount()
    camera_id = f"h{tag}"
    svc.create_camera(camera_id, camsim.rtsp_url(mount), line="environment", mode="always_on")
    own = svc.create_user(f"env{tag}", "line_admin", line="environment")
    other = svc.create_user(f"saf{tag}", "line_admin", line="safety")
    try:
        with connect(_ws_url(svc)) as mine, connect(_ws_url(svc)) as theirs:
            for ws, token in ((mine, own), (theirs, other)):
                ws.send(json.dumps({"type": "auth", "token": token}))
                ws.send(json.dumps({"type": "subscribe", "topics": ["alerts", "health"]}))
                _next(ws, "ready")
            _drain_until(
                mine,
                lambda m: m["type"] == "health" and m["camera"] == camera_id and m["new"] == "online",
                30,
            )
            camsim.stop_mount(mount)
            _drain_until(
                mine,
                lambda m: m["type"] == "health" and m["camera"] == camera_id and m["new"] == "offline",
                30,
            )
            alert = _drain_until(
                mine, lambda m: m["type"] == "alert" and m["alert"]["camera"] == camera_id, 30
            )
            assert alert["alert"]["line"] == "environment" and alert["event"] == "opened"
            # The other line's admin heard nothing about this camera.
            with pytest.raises(TimeoutError):
                _drain_until(theirs, lambda m: camera_id in json.dumps(m), 1.0)
    finally:
        svc.request("DELETE", f"/api/cameras/{camera_id}")


def test_logout_closes_the_socket(videohub_service: VideohubService) -> None:
    svc = videohub_service
    token = svc.create_user(f"op{uuid.uuid4().hex[:6]}", "operator")
    with connect(_ws_url(svc)) as ws:
        ws.send(json.dumps({"type": "auth", "token": token}))
        _next(ws, "ready")
        svc.call("POST", "/api/auth/logout", token=token, expect=204)
        with pytest.raises(ConnectionClosed) as closed:
            while True:
                ws.recv(timeout=30)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 4401


def test_a_slow_socket_loses_its_oldest_events_only() -> None:
    # The outbox alone (no socket needed): a display that cannot keep up keeps the newest events.
    from typing import cast

    from fastapi import WebSocket

    from videohub.api.ws import OUTBOX, LiveConnection
    from videohub.models import User

    conn = LiveConnection(cast(WebSocket, None), cast(Any, None), User(username="d", role="operator"), "t")
    for n in range(OUTBOX + 44):
        conn.push({"type": "wall", "n": n})
    assert len(conn.outbox) == OUTBOX and conn.dropped == 44
    assert json.loads(conn.outbox[0])["n"] == 44
    assert json.loads(conn.outbox[-1])["n"] == OUTBOX + 43
