"""Warm-up holds (issue 16): POST/DELETE /api/cameras/{id}/warm, and the holds' bounds.

The API tests run the app with the Feed hub on the camera simulator; the bounds are checked on
``WarmHolds`` over real Feeds (packets published as the ingest thread would).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from fractions import Fraction
from typing import Any

import pytest

from ingest.packet import Packet
from tests.apiclient import Api, api_session, camera_body
from tests.conftest import make_settings
from tests.fixtures.camsim import CameraSimulator
from videohub.errors import RateLimited
from videohub.hub.feed import Feed, Subscription
from videohub.hub.warm import MAX_PER_USER, WarmHolds
from videohub.models import Camera
from videohub.services import Parts
from videohub.store import Store


@pytest.fixture
async def warm_api(store: Store) -> AsyncIterator[Api]:
    settings = make_settings(admin_password="admin-pass-123", ingest__on_demand_idle=0.5)
    async with api_session(settings, store, parts=Parts(hub=True)) as api:
        yield api


async def create(api: Api, camera_id: str, url: str) -> None:
    body = camera_body(id=camera_id, streams={"main": {"url": url}}, mode="on_demand")
    response = await api.client.post("/api/cameras", json=body, headers=api.auth("admin"))
    assert response.status_code == 201, response.text


async def stream_of(api: Api, camera_id: str) -> dict[str, Any]:
    response = await api.client.get(f"/api/cameras/{camera_id}/ingest", headers=api.auth("admin"))
    assert response.status_code == 200, response.text
    stream: dict[str, Any] = response.json()["streams"][0]
    return stream


async def until(api: Api, camera_id: str, what: str, check: Any, limit: float = 15.0) -> dict[str, Any]:
    deadline = time.monotonic() + limit
    while True:
        stream = await stream_of(api, camera_id)
        if check(stream):
            return stream
        if time.monotonic() > deadline:
            raise AssertionError(f"{camera_id}: {what} not seen within {limit} s: {stream}")
        await asyncio.sleep(0.1)


@pytest.mark.media
async def test_a_hold_pulls_an_on_demand_camera_until_released_or_lapsed(
    warm_api: Api, camsim: CameraSimulator
) -> None:
    await create(warm_api, "ps-warm-1", camsim.rtsp_url("cb", {"cam": "warm1"}))
    assert (await stream_of(warm_api, "ps-warm-1"))["state"] == "idle"
    path = "/api/cameras/ps-warm-1/warm"
    held = await warm_api.client.post(
        path, json={"stream": "sub", "seconds": 10}, headers=warm_api.auth("operator")
    )
    assert held.status_code == 200, held.text
    body = held.json()
    # No sub stream: the main one is held, and said so.
    assert body["camera_id"] == "ps-warm-1" and body["stream"] == "main"
    assert body["until"] > time.time() + 8
    # The stream streams and its GOP cache fills, with the hold as its one subscriber.
    stream = await until(
        warm_api, "ps-warm-1", "streaming", lambda s: s["state"] == "streaming" and s["gop_packets"]
    )
    assert stream["subscribers"] == 1
    # Asking again extends the same hold; it does not add a viewer.
    again = await warm_api.client.post(path, json={"seconds": 20}, headers=warm_api.auth("operator"))
    assert again.status_code == 200 and again.json()["until"] > body["until"]
    assert (await stream_of(warm_api, "ps-warm-1"))["subscribers"] == 1
    # Released: the viewer is gone and the on_demand stream stops after its idle time.
    gone = await warm_api.client.delete(f"{path}?stream=main", headers=warm_api.auth("operator"))
    assert gone.status_code == 204
    await until(warm_api, "ps-warm-1", "idle", lambda s: s["state"] == "idle" and s["subscribers"] == 0)
    # A short hold lapses by itself.
    short = await warm_api.client.post(path, json={"seconds": 1}, headers=warm_api.auth("maintenance"))
    assert short.status_code == 200
    await until(warm_api, "ps-warm-1", "pulled", lambda s: s["subscribers"] == 1, limit=5)
    await until(warm_api, "ps-warm-1", "lapsed", lambda s: s["subscribers"] == 0, limit=10)


async def test_holds_check_rights_and_input(warm_api: Api) -> None:
    await create(warm_api, "ps-warm-2", "rtsp://192.0.2.10:554/live/main")
    path = "/api/cameras/ps-warm-2/warm"
    # Another line's admin cannot tell the camera exists; unknown cameras are 404 too.
    other = await warm_api.client.post(path, json={}, headers=warm_api.auth("safety_admin"))
    assert other.status_code == 404
    unknown = await warm_api.client.post(
        "/api/cameras/ps-nope/warm", json={}, headers=warm_api.auth("operator")
    )
    assert unknown.status_code == 404
    assert (await warm_api.client.post(path, json={})).status_code == 401
    for body, field in (({"seconds": 31}, "seconds"), ({"stream": "third"}, "stream"), ({"x": 1}, "x")):
        bad = await warm_api.client.post(path, json=body, headers=warm_api.auth("operator"))
        assert bad.status_code == 422, bad.text
        assert bad.json()["detail"][0]["loc"] == ["body", field]
    own = await warm_api.client.post(path, json={"seconds": 2}, headers=warm_api.auth("ps_admin"))
    assert own.status_code == 200, own.text
    released = await warm_api.client.delete(f"{path}?stream=main", headers=warm_api.auth("ps_admin"))
    assert released.status_code == 204


class FeedsDouble:
    """Real Feeds, one per camera stream, without ingest: the test publishes their packets."""

    def __init__(self) -> None:
        self.feeds: dict[str, Feed] = {}

    async def subscribe(self, camera: str | Camera, stream: str = "main") -> Subscription:
        camera_id = camera if isinstance(camera, str) else camera.id
        feed = self.feeds.setdefault(f"{camera_id}/{stream}", Feed(camera_id, stream))
        return feed.subscribe()


def camera(camera_id: str) -> Camera:
    return Camera.model_validate(
        {
            "id": camera_id,
            "created_at": 0,
            "updated_at": 0,
            **camera_body(streams={"main": {"url": "rtsp://192.0.2.10/x"}}),
        }
    )


def packet(keyframe: bool) -> Packet:
    return Packet(b"\x00\x00\x00\x01" + bytes(100), 0, Fraction(1, 90000), keyframe, time.monotonic())


async def test_holds_are_bounded_per_user_and_cost_no_loop_work_per_packet() -> None:
    feeds = FeedsDouble()
    holds = WarmHolds(feeds)
    await holds.start()
    try:
        for i in range(MAX_PER_USER):
            await holds.hold("op", camera(f"c{i}"), "main", 5)
        with pytest.raises(RateLimited):
            await holds.hold("op", camera("one-more"), "main", 5)
        # Extending one the user has is not a new hold; another user has their own allowance.
        await holds.hold("op", camera("c0"), "main", 5)
        await holds.hold("other", camera("c0"), "main", 5)
        feed = feeds.feeds["c0/main"]
        assert feed.subscribers == 2 and len(holds) == MAX_PER_USER + 1
        feed.publish(packet(True))
        for _ in range(5):
            await asyncio.sleep(0)
        # After the start burst, the ingest thread drops packets into the hold's no-op sink.
        sub = holds._holds[("op", "c0", "main")].subscription
        assert sub.is_direct
        for _ in range(1000):
            feed.publish(packet(False))
        assert sub.queued == 0 and sub.drops == 0
        # The feed ends (camera deleted): its holds are forgotten.
        feed.close("deleted")
        for _ in range(5):
            await asyncio.sleep(0)
        assert holds.held("c0", "main") == 0
        assert holds.release("op", "c1", "main") and not holds.release("op", "c1", "main")
    finally:
        await holds.close()
    assert len(holds) == 0 and all(f.subscribers == 0 for f in feeds.feeds.values())
