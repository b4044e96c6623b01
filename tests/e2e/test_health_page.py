"""Health page in real Chromium against the real service and camera simulator.

A maintenance user watches a camera go offline when its simulator mount stops: the row turns offline
and an alert appears without a reload; they acknowledge it from the page; the mount comes back and the
camera returns online (and its alert resolves itself). An operator sees the alert but cannot act.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from tests.fixtures.browser import login, screenshot
from tests.fixtures.camsim import CameraSimulator
from tests.fixtures.service import USER_PASSWORD, VideohubService

pytestmark = pytest.mark.e2e

# Generous: offline after 3 s without packets, online again after a 5 s hold, plus ingest backoff.
STATE_TIMEOUT_MS = 45_000


class Registered:
    """Cameras and users a test adds to the shared service, removed at its end (before the simulator
    stops, so no leftover camera goes offline and raises alerts in later tests)."""

    def __init__(self, service: VideohubService) -> None:
        self.service = service
        self.cameras: list[str] = []
        self.users: list[str] = []

    def camera(self, camera_id: str, url: str, **extra: Any) -> str:
        self.service.create_camera(camera_id, url, mode="always_on", **extra)
        self.cameras.append(camera_id)
        return camera_id

    def user(self, username: str, role: str) -> str:
        self.service.create_user(username, role)
        self.users.append(username)
        return username

    def remove(self) -> None:
        for camera in self.cameras:
            with contextlib.suppress(Exception):
                self.service.request("DELETE", f"/api/cameras/{camera}")
        for user in self.users:
            with contextlib.suppress(Exception):
                self.service.request("DELETE", f"/api/users/{user}")


@pytest.fixture
def sim(camsim_factory: Callable[..., CameraSimulator]) -> CameraSimulator:
    """A private simulator with no preset mounts (tests add fresh ones); closed after the test."""
    return camsim_factory(preset="none")


@pytest.fixture
def registered(videohub_service: VideohubService, sim: CameraSimulator) -> Iterator[Registered]:
    added = Registered(videohub_service)
    try:
        yield added
    finally:
        added.remove()


def active_alerts(service: VideohubService, camera: str) -> list[dict[str, Any]]:
    page: dict[str, Any] = service.call("GET", f"/api/alerts?camera={camera}&state=active")
    items: list[dict[str, Any]] = page["items"]
    return items


def test_stopped_camera_goes_offline_alerts_live_and_recovers(
    videohub_service: VideohubService,
    sim: CameraSimulator,
    registered: Registered,
    new_page: Callable[[], Page],
) -> None:
    service = videohub_service
    mount = sim.fresh_mount("width=640,height=360")
    suffix = uuid.uuid4().hex[:6]
    camera = registered.camera(f"hp-{suffix}", sim.rtsp_url(mount), name=f"梅里镇路口{suffix}")
    maintainer = registered.user(f"maint{suffix}", "maintenance")
    operator = registered.user(f"oper{suffix}", "operator")

    page = new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    login(page, service.base_url, maintainer, USER_PASSWORD, next_path="/health")
    row = page.locator(f"#cameras tr[data-camera='{camera}']")
    expect(row).to_have_attribute("data-state", "online", timeout=STATE_TIMEOUT_MS)
    expect(row.locator(".c-state .badge")).to_have_text("在线")
    expect(row.locator(".c-state")).not_to_contain_text("null")
    online_counter = page.locator("#counters .counter[data-state=online] .count")
    expect(online_counter).not_to_have_text("0")

    # An operator watches too, in a browser where audio cannot start: the cue must not break the page.
    watcher = new_page()
    watcher.add_init_script("window.AudioContext = function () { throw new Error('audio blocked'); };")
    watcher.on("pageerror", lambda exc: errors.append(f"operator: {exc}"))
    login(watcher, service.base_url, operator, USER_PASSWORD, next_path="/health")
    expect(watcher.locator(f"#cameras tr[data-camera='{camera}']")).to_have_attribute(
        "data-state", "online", timeout=STATE_TIMEOUT_MS
    )
    expect(watcher.locator("body")).to_have_attribute("data-live", "open")
    expect(page.locator("body")).to_have_attribute("data-live", "open")

    # The camera stops: the row turns offline and an alert arrives on the open pages.
    sim.stop_mount(mount)
    expect(row).to_have_attribute("data-state", "offline", timeout=STATE_TIMEOUT_MS)
    expect(row.locator(".c-state .badge")).to_have_text("离线")
    alert = page.locator(f"#alert-list li.alert[data-camera='{camera}']")
    expect(alert).to_have_attribute("data-state", "open", timeout=STATE_TIMEOUT_MS)
    expect(alert.locator(".kind")).to_have_text("离线")
    expect(page.locator("#alert-badge")).to_be_visible()
    expect(alert.locator("button.ack")).to_be_enabled()

    # The operator sees the same alert, with its cue, but may not act on it.
    seen = watcher.locator(f"#alert-list li.alert[data-camera='{camera}']")
    expect(seen).to_have_attribute("data-state", "open", timeout=STATE_TIMEOUT_MS)
    expect(watcher.locator("#alert-badge")).to_be_visible()
    expect(seen.locator("button.ack")).to_be_disabled()
    expect(watcher.locator("#alerts-readonly")).to_be_visible()

    # Acknowledge from the page with a note.
    alert.locator("input.note").fill("已派人检查线路")
    alert.locator("button.ack").click()
    expect(alert).to_have_attribute("data-state", "acknowledged")
    expect(alert.locator(".state-chip")).to_have_text("已确认")
    expect(alert.locator(".meta")).to_contain_text(maintainer)
    (record,) = active_alerts(service, camera)
    assert record["state"] == "acknowledged"
    assert record["acked_by"] == maintainer
    assert record["ack_note"] == "已派人检查线路"
    # The operator's page follows without a reload.
    expect(seen).to_have_attribute("data-state", "acknowledged", timeout=STATE_TIMEOUT_MS)

    # The detail view shows the offline transition on the camera's timeline.
    row.locator("button.open").click()
    dialog = page.locator("#detail")
    expect(dialog).to_be_visible()
    expect(dialog.locator("[data-testid=detail-state]")).to_have_text("离线")
    expect(dialog.locator(".timeline li[data-state=offline]").first).to_be_visible()
    screenshot(page, "health_detail_offline")
    dialog.locator("button.close").click()
    expect(dialog).to_be_hidden()
    screenshot(page, "health_offline_acknowledged")

    # The mount comes back: the camera returns online and its alert resolves itself.
    sim.start_mount(mount)
    expect(row).to_have_attribute("data-state", "online", timeout=STATE_TIMEOUT_MS)
    expect(alert).to_have_count(0, timeout=STATE_TIMEOUT_MS)

    # English on request.
    page.click("[data-testid=lang-switch]")
    expect(row.locator(".c-state .badge")).to_have_text("Online")
    expect(page.locator("#cameras-title")).to_have_text("Cameras")
    screenshot(page, "health_online_en")
    assert errors == []


def test_degraded_camera_filters_detail_checks_and_manual_resolve(
    videohub_service: VideohubService,
    sim: CameraSimulator,
    registered: Registered,
    browser_page: Page,
) -> None:
    service = videohub_service
    good = sim.fresh_mount("width=640,height=360")
    black = sim.fresh_mount("width=640,height=360,pattern=black")
    suffix = uuid.uuid4().hex[:6]
    fine = registered.camera(f"ok-{suffix}", sim.rtsp_url(good), name=f"派出所门口{suffix}")
    dark = registered.camera(f"bk-{suffix}", sim.rtsp_url(black), name=f"化工园区东门{suffix}", line="safety")
    maintainer = registered.user(f"maint{suffix}", "maintenance")

    page = browser_page
    login(page, service.base_url, maintainer, USER_PASSWORD, next_path="/health")
    page.fill("#filter-search", suffix)
    rows = page.locator("#cameras tbody tr")
    expect(rows).to_have_count(2, timeout=STATE_TIMEOUT_MS)
    # A black picture is diagnosed on a keyframe, then held: the camera turns degraded, reason 黑屏.
    dark_row = page.locator(f"#cameras tr[data-camera='{dark}']")
    expect(dark_row).to_have_attribute("data-state", "degraded", timeout=60_000)
    expect(dark_row.locator(".c-state .reasons")).to_have_text("黑屏")
    expect(page.locator(f"#cameras tr[data-camera='{fine}']")).to_have_attribute("data-state", "online")

    # Filters: by state, then by line.
    page.select_option("#filter-state", "degraded")
    expect(rows).to_have_count(1)
    expect(rows.first).to_have_attribute("data-camera", dark)
    page.select_option("#filter-state", "")
    page.select_option("#filter-line", "public_security")
    expect(rows).to_have_count(1)
    expect(rows.first).to_have_attribute("data-camera", fine)
    page.select_option("#filter-line", "")
    expect(rows).to_have_count(2)

    # The detail view names the failed check with its measured value.
    dark_row.locator("button.open").click()
    failed = page.locator("#detail table.checks tr.failed")
    expect(failed).to_have_count(1)
    expect(failed.locator("td").first).to_have_text("黑屏")
    page.keyboard.press("Escape")
    expect(page.locator("#detail")).to_be_hidden()

    # Resolve the degraded alert by hand, with a note; it leaves the active list.
    alert = page.locator(f"#alert-list li.alert[data-camera='{dark}']")
    expect(alert).to_have_attribute("data-kind", "degraded", timeout=STATE_TIMEOUT_MS)
    alert.locator("input.note").fill("镜头已清洁")
    alert.locator("button.resolve").click()
    expect(alert).to_have_count(0)
    page.reload()
    expect(page.locator(f"#cameras tr[data-camera='{dark}']")).to_have_attribute("data-state", "degraded")
    expect(page.locator(f"#alert-list li.alert[data-camera='{dark}']")).to_have_count(0)
    resolved: dict[str, Any] = service.call("GET", f"/api/alerts?camera={dark}&state=resolved")
    (record,) = resolved["items"]
    assert record["resolved_by"] == maintainer
    assert record["resolve_note"] == "镜头已清洁"
    screenshot(page, "health_degraded_resolved")
