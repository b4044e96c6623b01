"""GET /api/cameras/{id}/ingest and /snapshot.jpg over HTTP, with the hub running on the simulator."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.apiclient import Api, api_session, camera_body
from tests.fixtures.camsim import CameraSimulator
from videohub.services import Parts
from videohub.settings import Settings
from videohub.store import Store

pytestmark = pytest.mark.media


@pytest.fixture
async def hub_api(settings: Settings, store: Store) -> AsyncIterator[Api]:
    async with api_session(settings, store, parts=Parts(hub=True)) as session:
        yield session


async def create(api: Api, camera_id: str, url: str, **extra: Any) -> None:
    body = camera_body(id=camera_id, streams={"main": {"url": url}}, **extra)
    response = await api.client.post("/api/cameras", json=body, headers=api.auth("admin"))
    assert response.status_code == 201, response.text


async def ingest(api: Api, camera_id: str, who: str = "operator") -> dict[str, Any]:
    response = await api.client.get(f"/api/cameras/{camera_id}/ingest", headers=api.auth(who))
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()
    return data


async def wait_state(api: Api, camera_id: str, wanted: str, limit: float = 3.0) -> dict[str, Any]:
    deadline = time.monotonic() + limit
    while True:
        data = await ingest(api, camera_id)
        if data["streams"] and data["streams"][0]["state"] == wanted:
            return data
        if time.monotonic() > deadline:
            raise AssertionError(f"{camera_id} not {wanted} within {limit} s: {data}")
        await asyncio.sleep(0.1)


async def test_ingest_stats_and_snapshot_of_a_streaming_camera(hub_api: Api, camsim: CameraSimulator) -> None:
    await create(hub_api, "ps-api-1", camsim.rtsp_url("cb", {"cam": "api1"}))
    data = await wait_state(hub_api, "ps-api-1", "streaming")
    main = data["streams"][0]
    assert main["stream"] == "main" and main["always_on"] is True
    assert main["ingest"]["codec"] == "h264" and main["ingest"]["mode"] == "passthrough"
    assert (main["ingest"]["width"], main["ingest"]["height"]) == (640, 360)
    assert main["ingest"]["last_packet_at"] > time.time() - 60
    response = await hub_api.client.get(
        "/api/cameras/ps-api-1/snapshot.jpg", headers=hub_api.auth("maintenance")
    )
    assert response.status_code == 200
    assert response.headers["content-type"] == "image/jpeg"
    assert response.content.startswith(b"\xff\xd8")


async def test_no_picture_is_503_with_a_reason(hub_api: Api, camsim: CameraSimulator) -> None:
    await create(hub_api, "ps-api-dark", camsim.rtsp_url("no-such-mount"))
    data = await wait_state(hub_api, "ps-api-dark", "backing_off")
    assert data["streams"][0]["reason"] == "not_found"
    response = await hub_api.client.get(
        "/api/cameras/ps-api-dark/snapshot.jpg", headers=hub_api.auth("operator")
    )
    assert response.status_code == 503
    assert response.json()["reason"] == "not_found"
    assert "Retry-After" in response.headers


async def test_line_admins_see_only_their_lines_cameras(hub_api: Api, camsim: CameraSimulator) -> None:
    await create(hub_api, "ps-api-2", camsim.rtsp_url("cb", {"cam": "api2"}), mode="on_demand")
    own = await ingest(hub_api, "ps-api-2", who="ps_admin")
    assert own["streams"][0]["state"] == "idle"
    other = await hub_api.client.get("/api/cameras/ps-api-2/ingest", headers=hub_api.auth("safety_admin"))
    assert other.status_code == 404
    snap = await hub_api.client.get(
        "/api/cameras/ps-api-2/snapshot.jpg", headers=hub_api.auth("safety_admin")
    )
    assert snap.status_code == 404
    anonymous = await hub_api.client.get("/api/cameras/ps-api-2/ingest")
    assert anonymous.status_code == 401


async def test_credentials_never_appear_in_the_ingest_view(hub_api: Api, camsim: CameraSimulator) -> None:
    await create(hub_api, "ps-api-auth", camsim.auth_url("basic", password="Wr0ng-pass-77"))
    data = await wait_state(hub_api, "ps-api-auth", "backing_off")
    main = data["streams"][0]
    assert main["reason"] == "auth_failed"
    assert "Wr0ng-pass-77" not in str(data) and "admin@" not in str(data)
