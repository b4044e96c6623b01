"""Every WHEP error a player or an operator can meet, plus PATCH (trickle) and OPTIONS."""

from __future__ import annotations

import asyncio
import re

import pytest
from aiortc import RTCConfiguration, RTCPeerConnection

from tests.webrtc.conftest import SIZE, Whep
from tests.webrtc.viewer import Viewer

pytestmark = pytest.mark.media


async def offer_for(kind: str, direction: str = "recvonly", codec: str | None = None) -> str:
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    try:
        transceiver = pc.addTransceiver(kind, direction=direction)
        if codec is not None:
            caps = [
                c for c in pc.getTransceivers()[0].sender.getCapabilities(kind).codecs if codec in c.mimeType
            ]
            transceiver.setCodecPreferences(caps)
        await pc.setLocalDescription(await pc.createOffer())
        return str(pc.localDescription.sdp)
    finally:
        await pc.close()


async def test_unauthenticated_is_401(whep: Whep) -> None:
    sdp = await offer_for("video")
    assert (await whep.post_offer("", "cam-cb", sdp)).status_code == 401
    bad = {"Authorization": "Bearer not-a-token", "Content-Type": "application/sdp"}
    assert (await whep.client.post("/whep/cam-cb", content=sdp, headers=bad)).status_code == 401
    assert (await whep.client.get("/api/sessions")).status_code == 401


async def test_wrong_content_type_is_415(whep: Whep) -> None:
    response = await whep.post_offer(
        "operator", "cam-cb", await offer_for("video"), content_type="text/plain"
    )
    assert response.status_code == 415
    assert response.headers["accept-post"] == "application/sdp"


@pytest.mark.parametrize("case", ["garbage", "audio_only", "sendonly", "vp8_only", "empty"])
async def test_unusable_offers_are_400(whep: Whep, case: str) -> None:
    sdp = {
        "garbage": "this is not SDP",
        "empty": "",
        "audio_only": await offer_for("audio"),
        "sendonly": await offer_for("video", direction="sendonly"),
        "vp8_only": await offer_for("video", codec="VP8"),
    }[case]
    response = await whep.post_offer("operator", "cam-cb", sdp)
    assert response.status_code == 400, response.text
    assert await whep.live() == []


async def test_unknown_or_other_lines_camera_is_404(whep: Whep) -> None:
    sdp = await offer_for("video")
    assert (await whep.post_offer("operator", "no-such-cam", sdp)).status_code == 404
    # A line admin sees only its own line; another line's camera does not exist for it.
    assert (await whep.post_offer("ps_admin", "cam-safety", sdp)).status_code == 404
    assert (await whep.post_offer("safety_admin", "cam-cb", sdp)).status_code == 404


async def test_roles_that_may_watch(whep: Whep) -> None:
    for who in ("admin", "operator", "maintenance", "safety_admin"):
        camera = "cam-safety" if who == "safety_admin" else "cam-cb"
        viewer, url = await whep.play(who, camera)
        try:
            assert (await viewer.frame(within=30)).width == SIZE[0]
        finally:
            assert (await whep.client.delete(url, headers=whep.auth(who))).status_code == 200
            await viewer.close()


async def test_others_sessions_are_403(whep: Whep) -> None:
    viewer, url = await whep.play("operator", "cam-cb")
    try:
        await viewer.frame(within=30)
        assert (await whep.client.delete(url, headers=whep.auth("maintenance"))).status_code == 403
        patch = {**whep.auth("maintenance"), "Content-Type": "application/trickle-ice-sdpfrag"}
        assert (await whep.client.patch(url, content="a=ice-ufrag:x\r\n", headers=patch)).status_code == 403
        for who in ("operator", "ps_admin"):
            assert (await whep.client.get("/api/sessions", headers=whep.auth(who))).status_code == 403
        assert (await whep.client.get("/api/sessions", headers=whep.auth("maintenance"))).status_code == 200
        assert (await viewer.frame()).width == SIZE[0]  # still playing
        assert (await whep.client.delete(url, headers=whep.auth("admin"))).status_code == 200
        assert await viewer.frames_until_end(within=10)
    finally:
        await viewer.close()


async def _silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    # A camera that accepts the connection and never answers (hung firmware).
    try:
        await reader.read()
    finally:
        writer.close()


@pytest.mark.parametrize("camera_id", ["cam-refused", "cam-missing", "cam-silent", "cam-disabled"])
async def test_feed_that_cannot_start_is_503_with_retry_after(whep: Whep, camera_id: str) -> None:
    # (A stalled simulator mount is not used for the silent camera: while its DESCRIBE hangs, the
    # simulator answers no other mount either, which would slow every later test.)
    silent = await asyncio.start_server(_silent, "127.0.0.1", 0)
    async with silent:
        if camera_id == "cam-silent":
            port = silent.sockets[0].getsockname()[1]
            await whep.add_camera(camera_id, f"rtsp://127.0.0.1:{port}/live")
        await _expect_503(whep, camera_id)


async def _expect_503(whep: Whep, camera_id: str) -> None:
    if camera_id == "cam-disabled":
        response = await whep.client.patch(
            "/api/cameras/cam-cb", json={"enabled": False}, headers=whep.auth("admin")
        )
        assert response.status_code == 200
        camera_id = "cam-cb"
    response = await whep.post_offer("operator", camera_id, await offer_for("video"))
    assert response.status_code == 503, response.text
    assert int(response.headers["retry-after"]) >= 1
    assert await whep.live() == []


async def test_options_advertise_whep(whep: Whep) -> None:
    response = await whep.client.options("/whep/cam-cb")
    assert response.status_code == 204
    assert response.headers["accept-post"] == "application/sdp"
    assert "POST" in response.headers["access-control-allow-methods"]
    assert "Authorization" in response.headers["access-control-allow-headers"]
    assert "Location" in response.headers["access-control-expose-headers"]
    # No origin is configured: a foreign page gets no Access-Control-Allow-Origin.
    foreign = await whep.client.options("/whep/cam-cb", headers={"Origin": "http://evil.test"})
    assert "access-control-allow-origin" not in foreign.headers
    session = await whep.client.options("/whep/sessions/whatever")
    assert session.status_code == 204
    assert session.headers["accept-patch"] == "application/trickle-ice-sdpfrag"
    assert "DELETE" in session.headers["access-control-allow-methods"]


async def test_patch_trickle_and_ice_restart(whep: Whep) -> None:
    viewer = Viewer()
    try:
        await _patch_cases(whep, viewer)
    finally:
        await viewer.close()


async def _patch_cases(whep: Whep, viewer: Viewer) -> None:
    offer = await viewer.offer()
    response = await whep.post_offer("operator", "cam-cb", offer)
    assert response.status_code == 201, response.text
    url, etag = response.headers["location"], response.headers["etag"]
    ufrag = re.search(r"a=ice-ufrag:(\S+)", offer)
    assert ufrag is not None
    frag = (
        f"a=ice-ufrag:{ufrag.group(1)}\r\na=ice-pwd:ignored\r\nm=video 9 UDP/TLS/RTP/SAVPF 0\r\na=mid:0\r\n"
        "a=candidate:1 1 udp 2130706431 127.0.0.1 9 typ host\r\n"
        "a=candidate:2 1 udp 2130706431 4f1c6a3e.local 9 typ host\r\n"
    )
    sdpfrag = {**whep.auth("operator"), "Content-Type": "application/trickle-ice-sdpfrag"}
    await viewer.accept(response.text)
    wrong_type = await whep.client.patch(url, content=frag, headers={**sdpfrag, "Content-Type": "text/plain"})
    assert wrong_type.status_code == 415
    stale = await whep.client.patch(url, content=frag, headers={**sdpfrag, "If-Match": '"stale"'})
    assert stale.status_code == 412
    trickle = await whep.client.patch(url, content=frag, headers={**sdpfrag, "If-Match": etag})
    assert trickle.status_code == 204
    restart = await whep.client.patch(url, content=frag, headers={**sdpfrag, "If-Match": "*"})
    assert restart.status_code == 422
    new_ufrag = frag.replace(ufrag.group(1), "zzzz")
    assert (await whep.client.patch(url, content=new_ufrag, headers=sdpfrag)).status_code == 422
    assert (await whep.client.patch(url, content="junk here", headers=sdpfrag)).status_code == 400
    assert (await viewer.frame(within=30)).width == SIZE[0]  # none of it disturbed playback
    unknown = await whep.client.patch("/whep/sessions/nope", content=frag, headers=sdpfrag)
    assert unknown.status_code == 404


async def test_head_discovers_the_endpoint_for_a_camera_the_caller_may_watch(whep: Whep) -> None:
    # draft-ietf-wish-whep: a WHEP endpoint answers HEAD; a player learns it exists and may be watched.
    response = await whep.client.head("/whep/cam-cb", headers=whep.auth("operator"))
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/sdp"
    assert response.content == b""
    assert "HEAD" in response.headers["allow"] and "POST" in response.headers["allow"]
    assert (await whep.client.head("/whep/cam-cb")).status_code == 401
    assert (await whep.client.head("/whep/nope", headers=whep.auth("operator"))).status_code == 404
    # Another line's camera is not there for a line admin, as for every other request.
    assert (await whep.client.head("/whep/cam-cb", headers=whep.auth("safety_admin"))).status_code == 404
    # No session was made by any of it.
    assert await whep.live() == []
