"""The registry page in real Chromium: a line admin sees and edits only its line, imports CSV, and
"test connection" shows the ingest state and a snapshot of the camera."""

from __future__ import annotations

import uuid

import pytest
from playwright.sync_api import FilePayload, Page, expect

from tests.fixtures.browser import login, screenshot
from tests.fixtures.camsim import CameraSimulator
from tests.fixtures.service import USER_PASSWORD, VideohubService

pytestmark = pytest.mark.e2e


def _forget(svc: VideohubService, tag: str, users: list[str]) -> None:
    """Leave the shared service as found: its health page counts every registered camera."""
    for camera in svc.call("GET", "/api/cameras", params={"q": tag, "limit": 1000})["items"]:
        svc.request("DELETE", f"/api/cameras/{camera['id']}")
    for user in users:
        svc.request("DELETE", f"/api/users/{user}")


def test_line_admin_manages_own_line(
    videohub_service: VideohubService, camsim: CameraSimulator, browser_page: Page
) -> None:
    svc = videohub_service
    tag = uuid.uuid4().hex[:6]
    admin = f"la{tag}"
    svc.create_user(admin, "line_admin", line="environment")
    svc.create_camera(
        f"r{tag}-own", "rtsp://127.0.0.1:9/x", name="本条线", line="environment", mode="on_demand"
    )
    svc.create_camera(
        f"r{tag}-other", "rtsp://127.0.0.1:9/y", name="别的条线", line="safety", mode="on_demand"
    )
    try:
        page = browser_page
        page.on("dialog", lambda dialog: dialog.accept())
        login(page, svc.base_url, admin, USER_PASSWORD, next_path="/registry")
        rows = page.locator("#camera-rows tr")
        expect(page.locator(f"tr[data-camera='r{tag}-own']")).to_have_count(1)
        expect(page.locator(f"tr[data-camera='r{tag}-other']")).to_have_count(0)
        assert all(text == "环保" for text in page.locator("#camera-rows .c-line").all_text_contents())
        expect(page.locator("#line-filter")).to_be_hidden()  # one line: nothing to filter

        # Add a camera on the simulator, then edit its name. A line admin's ids carry its line's prefix.
        camera_id = f"hb-r{tag}-new"
        page.click("#add-camera")
        expect(page.locator("#f-line")).to_be_disabled()
        expect(page.locator("#f-id")).to_have_attribute("placeholder", "以 hb- 开头，留空自动生成")
        page.fill("#f-id", camera_id)
        page.fill("#f-name", "梅里镇污水厂")
        page.fill("#f-area", "梅里镇")
        page.fill("#f-main", camsim.rtsp_url("cb", {"cam": f"reg{tag}"}))
        page.select_option("#f-mode", "on_demand")
        page.click("#form-save")
        row = page.locator(f"tr[data-camera='{camera_id}']")
        expect(row.locator(".c-name")).to_have_text("梅里镇污水厂")
        row.locator("button.edit").click()
        page.fill("#f-name", "梅里镇污水处理厂")
        page.click("#form-save")
        expect(row.locator(".c-name")).to_have_text("梅里镇污水处理厂")

        # A bad URL is refused with the field named; nothing is saved.
        page.click("#add-camera")
        page.fill("#f-name", "坏地址")
        page.fill("#f-main", "ftp://example")
        page.click("#form-save")
        expect(page.locator("#form-error")).to_contain_text("streams.main.url")
        page.click("#form-cancel")

        # Test connection: the ingest state and a real snapshot of the simulator's picture.
        row.locator("button.test").click()
        snapshot = page.locator("#test-snapshot")
        page.wait_for_function("document.querySelector('#test-snapshot').naturalWidth > 0", timeout=30_000)
        assert snapshot.evaluate("img => img.src").startswith("blob:")
        expect(page.locator("#test-ingest")).to_contain_text("cb?cam=")
        screenshot(page, "registry_test_connection")
        page.click("#test-close")

        # CSV import: the own-line row is created, the other line's row is refused on its own.
        csv_text = (
            "id,name,line,area,main_url,mode\n"
            f"hb-r{tag}-csv1,导入一号,environment,梅里镇,rtsp://127.0.0.1:9/a,on_demand\n"
            f"r{tag}-csv2,导入二号,safety,梅里镇,rtsp://127.0.0.1:9/b,on_demand\n"
        )
        payload: FilePayload = {"name": "cams.csv", "mimeType": "text/csv", "buffer": csv_text.encode()}
        page.set_input_files("#csv-file", files=[payload])
        expect(page.locator("#import-result")).to_contain_text("成功 1 条，失败 1 条")
        expect(page.locator("#import-result li")).to_contain_text("第 2 行")
        expect(page.locator(f"tr[data-camera='hb-r{tag}-csv1']")).to_have_count(1)

        # Delete (after the confirm dialog).
        page.locator(f"tr[data-camera='hb-r{tag}-csv1'] button.delete").click()
        expect(page.locator(f"tr[data-camera='hb-r{tag}-csv1']")).to_have_count(0)
        assert rows.count() >= 2
        screenshot(page, "registry")

    finally:
        _forget(svc, tag, [admin])


def test_admin_sees_every_line(videohub_service: VideohubService, browser_page: Page) -> None:
    login(
        browser_page,
        videohub_service.base_url,
        "admin",
        videohub_service.admin_password,
        next_path="/registry",
    )
    expect(browser_page.locator("#line-filter option")).to_have_count(5)
