"""A third-party WHEP player in Chromium: medooze's ``whip-whep`` npm package plays a camera with trickle ICE.

The package's own ``WHEPClient`` does everything a WHEP player does against videohub: POST the offer
with a bearer token, follow ``Location``, trickle its candidates with PATCH (``If-Match`` the ETag) and
DELETE at the end. The test page is served on the service's origin by Playwright (no CORS involved) and
imports the package's code unchanged.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import pytest
from playwright.sync_api import Page, Route

from tests.fixtures.camsim import CameraSimulator
from tests.fixtures.npm import npm_package
from tests.fixtures.service import VideohubService

pytestmark = [pytest.mark.e2e, pytest.mark.media]

PLAYER_PAGE = """<!doctype html>
<html><body>
<video id="v" autoplay muted playsinline></video>
<script type="module">
import { WHEPClient } from "/interop/whep.js";
window.patches = 0;
const realFetch = window.fetch;
window.fetch = (url, init) => {
  if (init && init.method === "PATCH") window.patches += 1;
  return realFetch(url, init);
};
window.play = async (url, token) => {
  const pc = new RTCPeerConnection();
  pc.addTransceiver("video", { direction: "recvonly" });
  pc.ontrack = (event) => {
    document.getElementById("v").srcObject = event.streams[0] || new MediaStream([event.track]);
  };
  window.client = new WHEPClient();
  await window.client.view(pc, url, token);
  return true;
};
window.stopPlaying = async () => { await window.client.stop(); return true; };
window.ready = true;
</script>
</body></html>
"""


@pytest.fixture
def camera(videohub_service: VideohubService, camsim: CameraSimulator) -> Iterator[str]:
    camera_id = f"ga-interop-{uuid.uuid4().hex[:6]}"
    videohub_service.create_camera(
        camera_id, camsim.rtsp_url("cb", {"cam": camera_id}), name="梅里镇互通测试"
    )
    yield camera_id
    videohub_service.request("DELETE", f"/api/cameras/{camera_id}")


def _sessions(service: VideohubService, camera_id: str) -> int:
    return sum(1 for s in service.call("GET", "/api/sessions") if s["camera_id"] == camera_id)


def test_whip_whep_player_plays_with_trickle_and_stops(
    videohub_service: VideohubService, camera: str, browser_page: Page
) -> None:
    package = npm_package("whip-whep", "1.2.0")
    whep_js = (package / "whep.js").read_text(encoding="utf-8")
    page = browser_page

    def serve(route: Route) -> None:
        if route.request.url.endswith("/interop/whep.js"):
            route.fulfill(status=200, content_type="text/javascript", body=whep_js)
        else:
            route.fulfill(status=200, content_type="text/html", body=PLAYER_PAGE)

    page.route("**/interop/*", serve)
    page.goto(f"{videohub_service.base_url}/interop/player.html")
    page.wait_for_function("window.ready === true")
    token = videohub_service.admin_token
    assert page.evaluate(
        "([url, token]) => window.play(url, token)", [f"{videohub_service.base_url}/whep/{camera}", token]
    )

    # It plays: frames are decoded and the picture moves on.
    page.wait_for_function(
        "() => { const v = document.getElementById('v'); return v.videoWidth > 0 && v.currentTime > 0.5; }",
        timeout=20_000,
    )
    width = page.evaluate("document.getElementById('v').videoWidth")
    assert width == 640
    first = page.evaluate("document.getElementById('v').currentTime")
    time.sleep(1.0)
    assert page.evaluate("document.getElementById('v').currentTime") > first
    # It trickled its candidates with PATCH (accepted: the client throws on a refused PATCH).
    assert page.evaluate("window.patches") >= 1
    assert _sessions(videohub_service, camera) == 1

    # Its stop() DELETEs the session.
    assert page.evaluate("window.stopPlaying()")
    deadline = time.monotonic() + 10
    while _sessions(videohub_service, camera) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _sessions(videohub_service, camera) == 0
