"""GET /api/cameras/{id}/latest.jpg: the latest picture, kept in Redis, read without starting the stream.

Real parts: the app on the session's Valkey, the Feed hub and the health monitor (probes) on the
camera simulator. Issue 16: a wall tile shows a cold camera's latest picture at once.
"""

from __future__ import annotations

import asyncio
import io
import time
from collections.abc import AsyncIterator
from typing import Any

import av
import httpx
import pytest

from tests.apiclient import Api, api_session, camera_body
from tests.conftest import make_settings
from tests.fixtures.camsim import CameraSimulator
from videohub.services import Parts
from videohub.store import Store

pytestmark = pytest.mark.media


@pytest.fixture
async def live_api(store: Store) -> AsyncIterator[Api]:
    # Probes every 5 s (the first within 5 s of start), so an on_demand camera gets a picture soon.
    settings = make_settings(admin_password="admin-pass-123", health__probe_interval_seconds=5)
    async with api_session(settings, store, parts=Parts(hub=True, health=True)) as api:
        yield api


async def create(api: Api, camera_id: str, url: str, **extra: Any) -> None:
    body = camera_body(id=camera_id, streams={"main": {"url": url}}, **extra)
    response = await api.client.post("/api/cameras", json=body, headers=api.auth("admin"))
    assert response.status_code == 201, response.text


async def latest(api: Api, camera_id: str, who: str = "operator", query: str = "") -> httpx.Response:
    return await api.client.get(f"/api/cameras/{camera_id}/latest.jpg{query}", headers=api.auth(who))


async def wait_picture(api: Api, camera_id: str, limit: float = 30.0) -> httpx.Response:
    deadline = time.monotonic() + limit
    while True:
        response = await latest(api, camera_id)
        if response.status_code == 200:
            return response
        assert response.status_code == 404, response.text
        if time.monotonic() > deadline:
            raise AssertionError(f"no latest picture of {camera_id} within {limit} s")
        await asyncio.sleep(0.25)


def picture_size(jpeg: bytes) -> tuple[int, int]:
    with av.open(io.BytesIO(jpeg), mode="r", format="image2pipe") as container:
        frame = next(container.decode(video=0))
        return frame.width, frame.height


async def ingest_state(api: Api, camera_id: str) -> str:
    response = await api.client.get(f"/api/cameras/{camera_id}/ingest", headers=api.auth("admin"))
    assert response.status_code == 200, response.text
    state: str = response.json()["streams"][0]["state"]
    return state


async def test_a_probed_on_demand_camera_has_a_picture_without_being_started(
    live_api: Api, camsim: CameraSimulator
) -> None:
    await create(live_api, "ps-latest-1", camsim.rtsp_url("cb", {"cam": "latest1"}), mode="on_demand")
    response = await wait_picture(live_api, "ps-latest-1")
    assert response.headers["content-type"] == "image/jpeg"
    assert response.headers["x-picture-source"] == "probe"
    assert response.headers["x-picture-stream"] == "main"
    assert abs(float(response.headers["x-captured-at"]) - time.time()) < 60
    assert float(response.headers["x-picture-age"]) >= 0
    assert picture_size(response.content) == (640, 360)
    # Reading it again (as a wall of tiles does) never started the camera's stream.
    for _ in range(3):
        assert (await latest(live_api, "ps-latest-1", "maintenance")).status_code == 200
    assert await ingest_state(live_api, "ps-latest-1") == "idle"


async def test_a_snapshot_is_kept_and_outlives_the_stream(live_api: Api, camsim: CameraSimulator) -> None:
    mount = camsim.fresh_mount()
    await create(live_api, "ps-latest-2", camsim.rtsp_url(mount))
    snap = await live_api.client.get(
        "/api/cameras/ps-latest-2/snapshot.jpg", headers=live_api.auth("operator")
    )
    assert snap.status_code == 200, snap.text
    camsim.stop_mount(mount)
    response = await wait_picture(live_api, "ps-latest-2")
    assert response.headers["x-picture-source"] in ("snapshot", "keyframe")
    # The camera has no sub stream: asking for it gives the main stream's picture, said so.
    sub = await latest(live_api, "ps-latest-2", query="?stream=sub")
    assert sub.status_code == 200 and sub.headers["x-picture-stream"] == "main"


async def test_never_seen_unknown_forbidden_and_bad_input(live_api: Api) -> None:
    # 192.0.2.x never routes: the probe fails, so no picture is ever seen.
    await create(live_api, "ps-latest-3", "rtsp://192.0.2.10:554/live/main", mode="on_demand")
    response = await latest(live_api, "ps-latest-3")
    assert response.status_code == 404
    assert "no picture of camera 'ps-latest-3' has been seen yet" in response.json()["detail"]
    assert (await latest(live_api, "ps-nope-404")).status_code == 404
    # Another line's admin cannot tell the camera exists; its own line's admin may look.
    assert (await latest(live_api, "ps-latest-3", "safety_admin")).status_code == 404
    assert (await latest(live_api, "ps-latest-3", "ps_admin")).status_code == 404
    bad = await latest(live_api, "ps-latest-3", query="?stream=third")
    assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == ["query", "stream"]
    anonymous = await live_api.client.get("/api/cameras/ps-latest-3/latest.jpg")
    assert anonymous.status_code == 401


async def test_a_camera_pointed_elsewhere_drops_its_old_picture(
    live_api: Api, camsim: CameraSimulator
) -> None:
    await create(live_api, "ps-latest-4", camsim.rtsp_url("cb", {"cam": "latest4"}))
    snap = await live_api.client.get("/api/cameras/ps-latest-4/snapshot.jpg", headers=live_api.auth("admin"))
    assert snap.status_code == 200, snap.text
    await wait_picture(live_api, "ps-latest-4")
    patched = await live_api.client.patch(
        "/api/cameras/ps-latest-4",
        json={"streams": {"main": {"url": "rtsp://192.0.2.11:554/elsewhere"}}},
        headers=live_api.auth("admin"),
    )
    assert patched.status_code == 200, patched.text
    assert (await latest(live_api, "ps-latest-4")).status_code == 404
