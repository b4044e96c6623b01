"""Issue 14 in real Chromium: a wall tile whose camera's worker is killed comes back live by itself.

The display page is served by a worker that survives; its tile plays (through that worker's WHEP
routing) a camera owned by another worker, which is then killed with SIGKILL. The player retries by
itself: no reload, and the tile is live again from the camera's new owner.
"""

from __future__ import annotations

import uuid

import pytest
from playwright.sync_api import Page

from tests.e2e.wallpage import tile_stats, wait_playing, wait_tile
from tests.fixtures.browser import login, screenshot
from tests.fixtures.cluster import ClusterHarness, wait_for
from tests.fixtures.service import USER_PASSWORD

pytestmark = [pytest.mark.e2e, pytest.mark.media, pytest.mark.timeout(300)]


def test_a_wall_tile_comes_back_live_by_itself_after_its_owner_is_killed(
    cluster: ClusterHarness, settled: dict[str, list[str]], browser_page: Page
) -> None:
    victim = max((w for w in settled if w != "w3"), key=lambda w: len(settled[w]))
    camera = settled[victim][0]
    entry = cluster.entry(besides=(victim,))
    operator = f"op{uuid.uuid4().hex[:6]}"
    entry.create_user(operator, "operator")
    wall = f"w-failover-{uuid.uuid4().hex[:6]}"
    tiles = [{"camera_id": camera, "stream": "main"}]
    entry.call("PUT", f"/api/walls/{wall}", json={"layout": "1", "tiles": tiles})
    login(browser_page, entry.base_url, operator, USER_PASSWORD, next_path=f"/display/{wall}")
    browser_page.wait_for_function("window.__display && window.__display.view.wall !== null")
    wait_playing(browser_page, 0, camera)
    url = browser_page.url

    cluster.kill(victim)
    # The picture stops (the tile is no longer live, or its frames stop counting) …
    frames = tile_stats(browser_page, 0)["frames"]
    wait_tile(browser_page, 0, lambda s: s["state"] != "live" or s["frames"] < frames, "the tile notices", 20)
    # … and comes back from the new owner without a reload.
    wait_for(lambda: cluster.streaming_on(camera) not in (None, victim), 15, "the camera moved")
    wait_playing(browser_page, 0, camera, timeout=30)
    assert browser_page.url == url
    assert browser_page.evaluate("performance.getEntriesByType('navigation').length") == 1
    new_owner = cluster.owner_of(camera)
    assert new_owner is not None and new_owner != victim
    sessions = entry.call("GET", "/api/sessions")
    mine = [s for s in sessions if s["camera_id"] == camera and s["user"] == operator]
    assert [s["worker"] for s in mine] == [new_owner], sessions
    screenshot(browser_page, "cluster_tile_back_after_kill")
