"""/ws on the real service: auth first, the current wall on subscribe, every change pushed."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

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
