"""The operator console and the display in real Chromium, against the real service and simulator.

Nine cameras point at one simulator mount (``cb``: Constrained Baseline, no B-frames, 360p) with
distinct query strings, so the simulator encodes once. Cameras are ``on_demand``: pulled only while
a tile watches them.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.wallpage import open_console, tile, tile_stats, wait_playing, wait_tile
from tests.fixtures.browser import login, screenshot
from tests.fixtures.camsim import CameraSimulator
from tests.fixtures.service import USER_PASSWORD, VideohubService

pytestmark = pytest.mark.e2e


@dataclass
class Setup:
    service: VideohubService
    operator: str
    cameras: list[str]
    wall: str


@pytest.fixture
def setup(videohub_service: VideohubService, camsim: CameraSimulator) -> Iterator[Setup]:
    tag = uuid.uuid4().hex[:6]
    operator = f"op{tag}"
    videohub_service.create_user(operator, "operator")
    lines = ["public_security", "safety", "environment", "land_resources"]
    cameras = []
    for n in range(9):
        camera_id = f"e{tag}-{n}"
        videohub_service.create_camera(
            camera_id,
            camsim.rtsp_url("cb", {"cam": f"{tag}{n}"}),
            name=f"梅里镇{n + 1}号",
            line=lines[n % 4],
            area=f"片区{n % 3 + 1}",
            mode="on_demand",
        )
        cameras.append(camera_id)
    yield Setup(videohub_service, operator, cameras, f"wall-{tag}")
    for camera_id in cameras:
        videohub_service.request("DELETE", f"/api/cameras/{camera_id}")
    videohub_service.request("DELETE", f"/api/users/{operator}")


def _sessions(setup: Setup, camera_id: str) -> int:
    sessions = setup.service.call("GET", "/api/sessions")
    return sum(1 for s in sessions if s["camera_id"] == camera_id)


def _wait_sessions(setup: Setup, camera_id: str, count: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while _sessions(setup, camera_id) != count:
        assert time.monotonic() < deadline, f"{camera_id}: not {count} WHEP sessions within {timeout} s"
        time.sleep(0.2)


def _whep_posts(page: Page, index: int) -> int:
    posts: int = tile(page, index).evaluate("el => el.querySelector('video')._whep.posts")
    return posts


def _camera_item(page: Page, camera_id: str) -> str:
    return f".tree-camera[data-camera='{camera_id}']"


def test_drag_a_camera_onto_a_tile_and_it_plays(setup: Setup, browser_page: Page) -> None:
    page = browser_page
    open_console(page, setup.service, setup.operator, setup.wall)
    expect(page.locator(".tree-line")).to_have_count(4)
    # Search narrows the tree to matching cameras (name, id or area).
    page.fill("#camera-search", "梅里镇9号")
    expect(page.locator(".tree-camera")).to_have_count(1)
    expect(page.locator(".tree-line")).to_have_count(1)
    page.fill("#camera-search", "")
    expect(page.locator(f".tree-camera[data-camera^='{setup.cameras[0][:7]}']")).to_have_count(9)
    page.drag_and_drop(_camera_item(page, setup.cameras[0]), "#wall .tile[data-index='1']")
    stats = wait_playing(page, 1, setup.cameras[0])
    assert stats["width"] == 640 and stats["stream"] == "sub"
    expect(tile(page, 1).locator(".tile-name")).to_have_text("梅里镇1号")
    expect(tile(page, 1).locator(".tile-state")).to_have_text("直播")
    page.click("[data-testid=lang-switch]")
    expect(tile(page, 1).locator(".tile-state")).to_have_text("Live")
    page.click("[data-testid=lang-switch]")
    expect(tile(page, 1).locator(".tile-state")).to_have_text("直播")
    # The choice is the wall's: a reload shows the same camera in the same tile, and the page that
    # went away ended its WHEP session (one session left, not two).
    page.reload()
    wait_playing(page, 1, setup.cameras[0])
    _wait_sessions(setup, setup.cameras[0], 1)
    # Chromium plays what the camera's ingest thread sends it (after the GOP burst from the loop).
    sessions = setup.service.call("GET", "/api/sessions")
    assert [s["sending_from"] for s in sessions if s["camera_id"] == setup.cameras[0]] == ["ingest"]
    frames = wait_playing(page, 1, setup.cameras[0])["frames"]
    wait_tile(page, 1, lambda s: s["frames"] > frames + 20, "20 more frames decoded")
    # Drag the tile onto another: the camera moves there.
    page.drag_and_drop("#wall .tile[data-index='1']", "#wall .tile[data-index='3']")
    wait_playing(page, 3, setup.cameras[0])
    wait_tile(page, 1, lambda s: s["camera"] == "", "the old tile emptied")
    # Close the tile: it is empty and stops playing.
    tile(page, 3).hover()
    tile(page, 3).locator(".tile-close").click()
    wait_tile(page, 3, lambda s: s["camera"] == "" and s["state"] == "empty", "an empty tile")
    _wait_sessions(setup, setup.cameras[0], 0)


def test_nine_tiles_maximise_and_a_preset(
    setup: Setup, browser_page: Page, new_page: Callable[[], Page]
) -> None:
    page = browser_page
    open_console(page, setup.service, setup.operator, setup.wall)
    page.click("#layout-buttons button[data-layout='9']")
    expect(page.locator("#wall .tile")).to_have_count(9)
    for i, camera_id in enumerate(setup.cameras):
        page.click(_camera_item(page, camera_id))  # select, then click the tile
        tile(page, i).click()
        wait_tile(page, i, lambda s, c=camera_id: s["camera"] == c, f"camera {camera_id}")
    for i, camera_id in enumerate(setup.cameras):
        wait_playing(page, i, camera_id, timeout=60)
    screenshot(page, "console_9_tiles")

    # Double-click maximises the tile on the main stream; again restores the grid on sub streams.
    tile(page, 4).dblclick()
    stats = wait_playing(page, 4, setup.cameras[4])
    assert stats["stream"] == "main"
    assert tile_stats(page, 0)["hidden"]
    screenshot(page, "console_maximised")
    tile(page, 4).dblclick()
    assert wait_playing(page, 4, setup.cameras[4])["stream"] == "sub"
    assert not tile_stats(page, 0)["hidden"]
    wait_playing(page, 0, setup.cameras[0])

    # Save the wall as a preset, change the wall, recall the preset: the nine cameras are back.
    other = new_page()  # a second console, on another wall
    open_console(other, setup.service, setup.operator, f"{setup.wall}-b")
    page.fill("#preset-name", "防汛九宫格")
    page.click("#preset-save")
    preset = page.locator("#preset-list li", has_text="防汛九宫格")
    expect(preset).to_have_count(1)
    # The other console's list shows it without a reload.
    expect(other.locator("#preset-list li", has_text="防汛九宫格")).to_have_count(1)
    page.click("#layout-buttons button[data-layout='1']")
    expect(page.locator("#wall .tile")).to_have_count(1)
    preset.locator("button.recall").click()
    expect(page.locator("#wall .tile")).to_have_count(9)
    for i in (0, 8):
        wait_playing(page, i, setup.cameras[i])


def test_display_follows_the_console(setup: Setup, browser_page: Page, new_page: Callable[[], Page]) -> None:
    console = browser_page
    open_console(console, setup.service, setup.operator, setup.wall)
    console.click("#layout-buttons button[data-layout='4']")
    displays = []
    for _ in range(2):  # several displays may follow one wall
        display = new_page()
        login(
            display, setup.service.base_url, setup.operator, USER_PASSWORD, next_path=f"/display/{setup.wall}"
        )
        display.wait_for_selector("#wall .tile")
        displays.append(display)
    expect(displays[0].locator(".vh-nav")).to_have_count(0)  # no chrome on the big screen

    console.drag_and_drop(_camera_item(console, setup.cameras[2]), "#wall .tile[data-index='0']")
    for display in displays:
        wait_playing(display, 0, setup.cameras[2])
    console.click("#layout-buttons button[data-layout='1+5']")
    for display in displays:
        expect(display.locator("#wall")).to_have_attribute("data-layout", "1+5")
        expect(display.locator("#wall .tile")).to_have_count(6)
    # A tour in tile 1 cycles on the display too.
    console.click(_camera_item(console, setup.cameras[3]))
    console.click("#tour-add")
    console.click(_camera_item(console, setup.cameras[4]))
    console.click("#tour-add")
    console.select_option("#tour-target", "1")
    console.fill("#tour-dwell", "3")
    console.click("#tour-start")
    seen = set()
    for _ in range(2):
        stats = wait_tile(
            displays[0],
            1,
            lambda s: s["camera"] in setup.cameras[3:5] and s["camera"] not in seen,
            "next tour step",
        )
        seen.add(stats["camera"])
    assert seen == set(setup.cameras[3:5])
    wait_playing(displays[0], 0, setup.cameras[2])
    screenshot(displays[0], "display_follows_console")
    # Maximising on the console maximises on the displays (main stream), and restoring restores.
    tile(console, 0).dblclick()
    assert wait_playing(displays[1], 0, setup.cameras[2])["stream"] == "main"
    assert tile_stats(displays[1], 1)["hidden"]
    tile(console, 0).dblclick()
    assert wait_playing(displays[1], 0, setup.cameras[2])["stream"] == "sub"
    assert not tile_stats(displays[1], 1)["hidden"]
    screenshot(console, "console_with_tour")


def test_display_keeps_following_when_its_token_is_renewed(
    setup: Setup, browser_page: Page, new_page: Callable[[], Page]
) -> None:
    """The big screen runs for weeks: it renews its token, and its live socket survives the old one."""
    console = browser_page
    open_console(console, setup.service, setup.operator, setup.wall)
    console.click("#layout-buttons button[data-layout='4']")
    display = new_page()
    login(display, setup.service.base_url, setup.operator, USER_PASSWORD, next_path=f"/display/{setup.wall}")
    expect(display.locator("#wall")).to_have_attribute("data-layout", "4")
    old = display.evaluate("sessionStorage.getItem('videohub.token')")
    # What the page's timer does at half the token's lifetime, done now.
    assert display.evaluate("async () => (await import('/web/common/api.js')).refreshNow()") is True
    new = display.evaluate("sessionStorage.getItem('videohub.token')")
    assert new and new != old
    # The old token ends (as it would at its expiry): the server closes the display's socket within
    # its token check interval (5 s); the display must reconnect with the new token, not ask for a login.
    setup.service.call("POST", "/api/auth/logout", token=old, expect=204)
    time.sleep(7)
    console.click("#layout-buttons button[data-layout='9']")
    expect(display.locator("#wall")).to_have_attribute("data-layout", "9", timeout=15_000)
    assert f"/display/{setup.wall}" in display.url


def test_tile_shows_interrupted_and_recovers(
    setup: Setup, camsim: CameraSimulator, browser_page: Page
) -> None:
    mount = camsim.fresh_mount("width=640,height=360")
    camera_id = f"{setup.cameras[0]}-x"
    setup.service.create_camera(camera_id, camsim.rtsp_url(mount), name="断流测试", mode="on_demand")
    page = browser_page
    try:
        open_console(page, setup.service, setup.operator, setup.wall)
        page.click("#layout-buttons button[data-layout='1']")
        page.drag_and_drop(_camera_item(page, camera_id), "#wall .tile[data-index='0']")
        wait_playing(page, 0, camera_id)
        camsim.stop_mount(mount)
        wait_tile(page, 0, lambda s: s["state"] == "interrupted", "中断")
        expect(tile(page, 0).locator(".tile-state")).to_have_text("中断")
        # The tile keeps the last picture (dimmed) instead of going black.
        poster = tile(page, 0).locator("video").get_attribute("poster") or ""
        assert poster.startswith("data:image/jpeg"), poster[:40]
        screenshot(page, "console_interrupted")
        camsim.start_mount(mount)
        wait_playing(page, 0, camera_id, timeout=60)
        # A camera deleted while on the wall: the tile says so instead of retrying every few seconds.
        setup.service.call("DELETE", f"/api/cameras/{camera_id}", expect=204)
        wait_tile(page, 0, lambda s: s["state"] == "unavailable", "unavailable")
        expect(tile(page, 0).locator(".tile-state")).to_have_text("无法播放（已删除或无权限）")
        posts = _whep_posts(page, 0)
        page.wait_for_timeout(5000)
        assert _whep_posts(page, 0) == posts  # no retry storm against a deleted camera
    finally:
        setup.service.request("DELETE", f"/api/cameras/{camera_id}")


def test_wall_tour_pages_cameras_and_english_labels(setup: Setup, browser_page: Page) -> None:
    page = browser_page
    open_console(page, setup.service, setup.operator, setup.wall)
    page.click("[data-testid=lang-switch]")
    expect(page.locator("#tour-start")).to_have_text("Start tour")
    page.click("#layout-buttons button[data-layout='4']")
    expect(page.locator("#wall .tile")).to_have_count(4)
    for camera_id in setup.cameras[:5]:
        page.click(_camera_item(page, camera_id))
        page.click("#tour-add")
    expect(page.locator("#tour-cameras li")).to_have_count(5)
    page.select_option("#tour-target", "wall")
    page.fill("#tour-dwell", "3")
    page.click("#tour-start")
    expect(page.locator("#tour-list li .name")).to_have_text("Whole wall: 5 cameras, 3 s")
    # Five cameras over four tiles: tile 0 shows camera 0 on one page and camera 4 on the next.
    seen: set[str] = set()
    for _ in range(2):
        stats = wait_tile(
            page,
            0,
            lambda s: s["camera"] in (setup.cameras[0], setup.cameras[4]) and s["camera"] not in seen,
            "the next page of the tour",
        )
        seen.add(stats["camera"])
    wait_playing(page, 0)
    expect(tile(page, 0).locator(".tile-state")).to_have_text("Live")
    expect(tile(page, 0).locator(".tile-tour")).to_have_text("Tour 3s")
    page.locator("#tour-list li button").click()
    expect(page.locator("#tour-list li")).to_have_count(0)


def test_a_console_behind_another_is_refreshed_not_overwriting(setup: Setup, browser_page: Page) -> None:
    page = browser_page
    open_console(page, setup.service, setup.operator, setup.wall)
    page.click("#layout-buttons button[data-layout='9']")
    expect(page.locator("#wall .tile")).to_have_count(9)
    # This console stops hearing pushes; another console then puts a camera in tile 0.
    page.evaluate("window.__console.socket.close()")
    wall = setup.service.call("GET", f"/api/walls/{setup.wall}")
    tiles = [{"camera_id": setup.cameras[5]}]
    setup.service.call("PUT", f"/api/walls/{setup.wall}", json={"layout": "9", "tiles": tiles})
    # The stale console's own change is refused and it shows the other console's wall instead.
    page.click(_camera_item(page, setup.cameras[6]))
    tile(page, 4).click()
    expect(page.locator(".toast.error")).to_contain_text("已被其他席位修改")
    wait_tile(page, 0, lambda s: s["camera"] == setup.cameras[5], "the other console's camera")
    assert tile_stats(page, 4)["camera"] == ""
    assert setup.service.call("GET", f"/api/walls/{setup.wall}")["version"] == wall["version"] + 1
