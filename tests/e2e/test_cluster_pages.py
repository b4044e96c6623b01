"""The cluster in real Chromium (issue 14): two workers on one Valkey, each on its own port (origin).

The health page's workers panel lists both (zh-CN first, English on request) and shows a worker that
drops out of the list as lost (失联); a line admin does not get the panel. The wall's player
(web/common/whep.js) asked for a camera that the other worker owns follows the 307 across origins,
token included, plays there, and its DELETE ends the session on that worker.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Page, expect

from tests.apiclient import ADMIN_PASSWORD, PASSWORD, camera_body
from tests.cluster.nodes import ThreadedCluster
from tests.conftest import make_settings
from tests.fixtures.browser import login, screenshot
from tests.fixtures.camsim import CameraSimulator

pytestmark = [pytest.mark.e2e, pytest.mark.media]

CAMERAS = [f"cam-e{i}" for i in range(12)]


@pytest.fixture
def cluster(redis_url: str, tmp_path: Path, camsim: CameraSimulator) -> Iterator[ThreadedCluster]:
    # The player reaches the owner on another origin: the owner allows the entry point's pages.
    settings = make_settings(admin_password=ADMIN_PASSWORD, server__cors_origins=["*"])
    nodes = ThreadedCluster(redis_url, tmp_path, settings, ["w1", "w2"], whep_routing="redirect")
    nodes.start()
    try:
        entry = nodes.nodes[0].address
        with httpx.Client(base_url=entry, timeout=30) as http:
            token = http.post("/api/auth/login", json={"username": "admin", "password": ADMIN_PASSWORD})
            admin = {"Authorization": f"Bearer {token.json()['access_token']}"}
            for name, spec in {
                "maintenance": {"role": "maintenance"},
                "ps_admin": {"role": "line_admin", "line": "public_security"},
            }.items():
                made = http.post(
                    "/api/users", json={"username": name, "password": PASSWORD, **spec}, headers=admin
                )
                assert made.status_code == 201, made.text
            for camera_id in CAMERAS:
                body = camera_body(id=camera_id, mode="on_demand")
                body["streams"] = {"main": {"url": camsim.rtsp_url("cb", {"cam": camera_id})}}
                assert http.post("/api/cameras", json=body, headers=admin).status_code == 201
        yield nodes
    finally:
        nodes.close()


def _served_by_w2(nodes: ThreadedCluster) -> str:
    """A camera that placement gives to w2 (deterministic: rendezvous over w1 and w2)."""
    entry = nodes.nodes[0].cluster

    async def owners() -> dict[str, str | None]:
        return {c: (w.id if (w := await entry.owner(c)) else None) for c in CAMERAS}

    found = [c for c, w in nodes.wait(owners()).items() if w == "w2"]
    assert found
    return found[0]


def _sessions_on(nodes: ThreadedCluster, index: int) -> int:
    def count() -> int:
        manager = nodes.nodes[index].services.sessions
        return len(manager) if manager is not None else -1

    return nodes.run(count)


def _eventually(check: Callable[[], bool], within: float, what: str) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.2)
    raise AssertionError(f"not within {within} s: {what}")


def test_health_page_lists_the_workers_and_shows_a_lost_one(
    cluster: ThreadedCluster, new_page: Callable[[], Page]
) -> None:
    page = new_page()
    entry = cluster.nodes[0].address
    login(page, entry, "maintenance", PASSWORD, next_path="/health")
    panel = page.locator("#workers-panel")
    expect(panel.locator("h2")).to_have_text("工作进程")
    w1 = panel.locator("tr[data-worker=w1]")
    w2 = panel.locator("tr[data-worker=w2]")
    expect(w1).to_contain_text("本机")
    expect(w2).to_have_attribute("data-state", "live")
    cells = w2.locator("td")
    expect(cells.nth(2)).to_have_text("0")  # cameras: all on_demand, nobody watches
    expect(cells.nth(3)).to_have_text("0")
    expect(cells.nth(4)).to_have_text(re.compile(r"^\d+\.\d %$"))
    expect(cells.nth(5)).to_have_text(re.compile(r"^\d 秒前$"))
    expect(cells.nth(6)).to_have_text("正常")

    page.click("[data-testid=lang-switch]")
    expect(panel.locator("h2")).to_have_text("Workers")
    expect(cells.nth(6)).to_have_text("Live")

    # w2 stops: it leaves the cluster's list, and the page keeps it, marked lost.
    cluster.wait(cluster.nodes[1].stop())
    expect(w2).to_have_attribute("data-state", "lost", timeout=10_000)
    expect(cells.nth(6)).to_have_text("Lost")
    expect(cells.nth(2)).to_have_text("—")
    expect(w1).to_have_attribute("data-state", "live")
    screenshot(page, "health_workers_lost")

    # A line admin may not read the deployment's workers: no panel.
    other = new_page()
    login(other, entry, "ps_admin", PASSWORD, next_path="/health")
    expect(other.locator("body")).to_have_attribute("data-ready", "1")
    expect(other.locator("#workers-panel")).to_be_hidden()


def test_the_player_follows_a_cross_origin_307_and_ends_its_session_there(
    cluster: ThreadedCluster, new_page: Callable[[], Page]
) -> None:
    page = new_page()
    entry, owner = (node.address for node in cluster.nodes)
    camera = _served_by_w2(cluster)
    login(page, entry, "maintenance", PASSWORD, next_path="/health")
    expect(page.locator("body")).to_have_attribute("data-ready", "1")
    posts: list[tuple[str, int]] = []
    page.on("response", lambda r: posts.append((r.url, r.status)) if r.request.method == "POST" else None)
    page.evaluate(
        """async (camera) => {
          const { playWhep } = await import("/web/common/whep.js");
          const video = document.createElement("video");
          video.muted = true;
          video.id = "probe";
          document.body.append(video);
          window.probe = playWhep(video, camera, "main");
        }""",
        camera,
    )
    expect(page.locator("#probe")).to_have_attribute("data-state", "live", timeout=30_000)
    assert (f"{entry}/whep/{camera}?stream=main", 307) in posts
    # Chromium followed it without the token (another origin: 401), the player asked again with it.
    assert (f"{owner}/whep/{camera}?stream=main", 201) in posts
    assert _sessions_on(cluster, 1) == 1 and _sessions_on(cluster, 0) == 0

    page.evaluate("() => window.probe.close()")
    _eventually(lambda: _sessions_on(cluster, 1) == 0, 10, "the owner ends the session on DELETE")
