"""One user floods WHEP with offers that never connect; another user's wall tile keeps playing.

A real ``videohub serve`` (default limits: 16 pending sessions per user, 10 s connect timeout) pulls
a camera from the simulator. A wall tile (an aiortc player of user ``wall``) starts first; then user
``flooder`` posts 1,000 valid offers whose player is already gone, so none of them ever completes ICE.
"""

from __future__ import annotations

import asyncio
import json
import math
import time
from collections import Counter
from collections.abc import Iterator

import httpx
import pytest
from aiortc import RTCConfiguration, RTCPeerConnection

from tests.fixtures.camsim import CameraSimulator
from tests.fixtures.service import VideohubService
from tests.webrtc.viewer import Viewer

pytestmark = pytest.mark.media

POSTS = 1000
CONCURRENCY = 20
PENDING_PER_USER = 16  # webrtc.max_pending_per_user
CONNECT_TIMEOUT = 10.0  # webrtc.connect_timeout: a pending slot is freed at most this late (+1 s watchdog)


@pytest.fixture
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[VideohubService]:
    with VideohubService(
        tmp_path_factory.mktemp("flood"), env={"VIDEOHUB_SERVER__LOG_LEVEL": "warning"}
    ) as svc:
        yield svc


async def dead_offer() -> str:
    """A valid offer from a player that is closed at once: its ICE can never complete."""
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    try:
        pc.addTransceiver("video", direction="recvonly")
        await pc.setLocalDescription(await pc.createOffer())
        return str(pc.localDescription.sdp)
    finally:
        await pc.close()


async def test_one_users_offer_flood_gets_429_while_another_users_tile_plays(
    service: VideohubService, camsim: CameraSimulator
) -> None:
    service.create_camera("flood-cam", camsim.rtsp_url("cb", {"cam": "flood"}), mode="always_on")
    wall_token = service.create_user("wall", "operator")
    flood_token = service.create_user("flooder", "operator")
    sdp = {"Content-Type": "application/sdp"}

    async with httpx.AsyncClient(
        base_url=service.base_url, timeout=60, limits=httpx.Limits(max_connections=CONCURRENCY + 4)
    ) as client:
        tile = Viewer()
        try:
            response = await client.post(
                "/whep/flood-cam", content=await tile.offer(), headers={**service.auth(wall_token), **sdp}
            )
            assert response.status_code == 201, response.text
            await tile.accept(response.text)
            await tile.frame(within=30)

            async def keep_decoding() -> None:
                while True:
                    await tile.frame(within=30)

            decoding = asyncio.create_task(keep_decoding())
            offer = await dead_offer()
            statuses: Counter[int] = Counter()
            retry_after: set[str | None] = set()
            gate = asyncio.Semaphore(CONCURRENCY)
            samples: list[tuple[float, int]] = []

            async def post() -> None:
                async with gate:
                    r = await client.post(
                        "/whep/flood-cam", content=offer, headers={**service.auth(flood_token), **sdp}
                    )
                statuses[r.status_code] += 1
                if r.status_code == 429:
                    retry_after.add(r.headers.get("retry-after"))
                    assert "webrtc.max_pending_per_user" in r.text, r.text

            async def sample_frames() -> None:
                while True:
                    samples.append((time.monotonic(), tile.frames))
                    await asyncio.sleep(0.5)

            sampler = asyncio.create_task(sample_frames())
            started, frames_before = time.monotonic(), tile.frames
            await asyncio.gather(*(post() for _ in range(POSTS)))
            elapsed, frames_during = time.monotonic() - started, tile.frames - frames_before
            sampler.cancel()
            sessions = (await client.get("/api/sessions", headers=service.auth())).json()
            flooder_live = sum(1 for s in sessions if s["user"] == "flooder")
            wall_live = [s for s in sessions if s["user"] == "wall"]
            # Still playing after the flood.
            frames_after = tile.frames
            await asyncio.sleep(2.0)
            assert tile.frames > frames_after, "the wall tile stopped after the flood"
            decoding.cancel()
        finally:
            await tile.close()

    half = started + elapsed / 2
    first_half = [f for t, f in samples if t <= half]
    second_half = [f for t, f in samples if t > half]
    report = {
        "posts": POSTS,
        "statuses": dict(statuses),
        "flood_s": round(elapsed, 1),
        "tile_frames_during_flood": frames_during,
        "tile_fps_during_flood": round(frames_during / elapsed, 1),
        "flooder_sessions_after": flooder_live,
    }
    print(json.dumps(report))
    # Only 201s (the pending slots, and those freed by connect_timeout meanwhile) and 429s.
    assert set(statuses) <= {201, 429}, report
    allowed = PENDING_PER_USER * (1 + math.ceil(elapsed / CONNECT_TIMEOUT))
    assert statuses[201] <= allowed, report
    assert statuses[429] >= POSTS - allowed, report
    assert retry_after == {"1"}, retry_after
    assert flooder_live <= PENDING_PER_USER, report
    # The other user's tile kept decoding through both halves of the flood.
    assert len(wall_live) == 1 and wall_live[0]["state"] == "connected", wall_live
    assert first_half and second_half and first_half[-1] > first_half[0] and second_half[-1] > second_half[0]
