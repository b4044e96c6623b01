"""Walls, presets and tours carry camera ids: a line admin sees another line's tiles as "no permission",
without their ids, over HTTP, over /ws and on the display page (real Chromium)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from playwright.sync_api import Page, expect
from websockets.sync.client import ClientConnection, connect

from tests.fixtures.browser import login, screenshot
from tests.fixtures.service import USER_PASSWORD, VideohubService


@dataclass
class Setup:
    svc: VideohubService
    tag: str
    own: str
    other: str
    wall: str
    line_admin: str
    line_admin_token: str
    operator: str


@pytest.fixture
def setup(videohub_service: VideohubService) -> Iterator[Setup]:
    svc = videohub_service
    tag = uuid.uuid4().hex[:6]
    own, other = f"own{tag}", f"secret{tag}"
    svc.create_camera(own, "rtsp://127.0.0.1:9/own", name="环保监测点", line="environment", mode="on_demand")
    svc.create_camera(
        other, "rtsp://127.0.0.1:9/other", name="公安卡口", line="public_security", mode="on_demand"
    )
    line_admin = f"env{tag}"
    operator = svc.create_user(f"op{tag}", "operator")
    token = svc.create_user(line_admin, "line_admin", line="environment")
    wall = f"w{tag}"
    body = {
        "layout": "4",
        "tiles": [{"camera_id": own}, {"camera_id": other, "stream": "main"}],
        "tours": [
            {"tile": 2, "cameras": [own, other], "dwell_seconds": 3600},
            {"tile": 3, "cameras": [other, own], "dwell_seconds": 3600},
        ],
    }
    svc.call("PUT", f"/api/walls/{wall}", token=operator, json=body)
    yield Setup(svc, tag, own, other, wall, line_admin, token, operator)
    for camera_id in (own, other):
        svc.request("DELETE", f"/api/cameras/{camera_id}")


def _check_redacted(wall: dict[str, Any], s: Setup) -> None:
    assert s.other not in json.dumps(wall), wall
    tiles = wall["tiles"]
    assert tiles[0] == {"camera_id": s.own, "stream": "sub"}
    assert tiles[1] == {"camera_id": None, "stream": "main", "hidden": True, "reason": "forbidden"}
    first, second = wall["tours"]
    assert first["cameras"] == [s.own, None] and second["cameras"] == [None, s.own]
    assert all(t["hidden"] is True and t["reason"] == "forbidden" for t in (first, second))


def test_walls_and_presets_hide_other_lines_cameras(setup: Setup) -> None:
    s = setup
    svc = s.svc
    _check_redacted(svc.call("GET", f"/api/walls/{s.wall}", token=s.line_admin_token), s)
    listed = svc.call("GET", "/api/walls", token=s.line_admin_token)
    assert s.other not in json.dumps(listed)
    _check_redacted(next(w for w in listed if w["id"] == s.wall), s)

    wall = svc.call("GET", f"/api/walls/{s.wall}", token=s.operator)
    spec = {k: wall[k] for k in ("layout", "tiles", "tours")}
    preset = svc.call(
        "POST", "/api/presets", token=s.operator, json={"name": f"预案{s.tag}", "wall": spec}, expect=201
    )
    try:
        presets = svc.call("GET", "/api/presets", token=s.line_admin_token)
        assert s.other not in json.dumps(presets)
        _check_redacted(next(p for p in presets if p["id"] == preset["id"])["wall"], s)
        _check_redacted(svc.call("GET", f"/api/presets/{preset['id']}", token=s.line_admin_token)["wall"], s)
        # Everybody else still sees the whole wall.
        for token in (s.operator, svc.admin_token):
            full = svc.call("GET", f"/api/walls/{s.wall}", token=token)
            assert full["tiles"][1] == {"camera_id": s.other, "stream": "main"}
            assert full["tours"][0]["cameras"] == [s.own, s.other] and "hidden" not in full["tours"][0]
    finally:
        svc.request("DELETE", f"/api/presets/{preset['id']}", token=s.operator)
    # Nor can a line admin write a wall to learn what it holds.
    put = svc.request("PUT", f"/api/walls/{s.wall}", token=s.line_admin_token, json={"layout": "1"})
    assert put.status_code == 403 and s.other not in put.text


def _next_wall(ws: ClientConnection) -> dict[str, Any]:
    while True:
        message: dict[str, Any] = json.loads(ws.recv(timeout=10))
        if message["type"] == "wall":
            wall: dict[str, Any] = message["wall"]
            return wall


def test_the_live_wall_push_is_redacted_too(setup: Setup) -> None:
    s = setup
    url = s.svc.base_url.replace("http://", "ws://") + "/ws"
    with connect(url) as ws:
        ws.send(json.dumps({"type": "auth", "token": s.line_admin_token}))
        ws.send(json.dumps({"type": "subscribe", "topics": [f"wall:{s.wall}"]}))
        _check_redacted(_next_wall(ws), s)
        body = {
            "layout": "4",
            "tiles": [{"camera_id": s.own}, {"camera_id": s.other, "stream": "main"}, {"camera_id": s.other}],
            "tours": [
                {"tile": 2, "cameras": [s.own, s.other], "dwell_seconds": 3600},
                {"tile": 3, "cameras": [s.other, s.own], "dwell_seconds": 3600},
            ],
        }
        s.svc.call("PUT", f"/api/walls/{s.wall}", token=s.operator, json=body)
        pushed = _next_wall(ws)
        _check_redacted(pushed, s)
        assert pushed["tiles"][2]["hidden"] is True and pushed["version"] == 2


@pytest.mark.e2e
def test_the_display_shows_no_permission(setup: Setup, browser_page: Page) -> None:
    s = setup
    page = browser_page
    login(page, s.svc.base_url, s.line_admin, USER_PASSWORD, next_path=f"/display/{s.wall}")
    hidden = page.locator("[data-testid=tile-1]")
    expect(hidden.locator(".tile-name")).to_have_text("无权限")
    expect(hidden).to_have_attribute("data-state", "forbidden")
    expect(page.locator("[data-testid=tile-0]")).to_have_attribute("data-camera", s.own)
    expect(page.locator("[data-testid=tile-0] .tile-name")).to_have_text("环保监测点")
    # The tour's current step (its first camera, dwell one hour) is the line's own camera.
    expect(page.locator("[data-testid=tile-2]")).to_have_attribute("data-camera", s.own)
    # The other tour starts on the other line's camera: that step shows no permission either.
    expect(page.locator("[data-testid=tile-3] .tile-name")).to_have_text("无权限")
    assert s.other not in page.content()
    screenshot(page, "display_no_permission_zh")
    page.evaluate("localStorage.setItem('videohub.lang', 'en')")
    page.reload()
    expect(page.locator("[data-testid=tile-1] .tile-name")).to_have_text("No permission")
    screenshot(page, "display_no_permission_en")
    # The console (read-only for a line admin) draws the same wall the same way.
    page.goto(f"{s.svc.base_url}/?wall={s.wall}")
    expect(page.locator("#wall [data-testid=tile-1] .tile-name")).to_have_text("No permission")
    expect(page.locator("#wall [data-testid=tile-0]")).to_have_attribute("data-camera", s.own)
    assert s.other not in page.content()
