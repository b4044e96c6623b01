"""Parked webhook events on the health page, in real Chromium against a real service process.

A webhook receiver answers 500: the alert of a camera that is switched off is parked after the
configured attempts and shows on the health page (hook, event, attempts, last error, parked at).
Once the receiver is fixed, maintenance re-sends it from the page and the receiver gets it, with
the event's own delivery id. An operator does not see the panel.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from tests.alerts.recorder import WebhookRecorder, free_port
from tests.fixtures.browser import login, screenshot
from tests.fixtures.service import USER_PASSWORD, VideohubService

pytestmark = pytest.mark.e2e


class ThreadedRecorder:
    """The webhook recorder on its own event loop in a thread (the Playwright test is synchronous)."""

    def __init__(self, status: int) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="webhook-recorder", daemon=True)
        self.thread.start()
        self.recorder = WebhookRecorder(status=status)
        asyncio.run_coroutine_threadsafe(self.recorder.start(), self.loop).result(10)

    def close(self) -> None:
        asyncio.run_coroutine_threadsafe(self._stop(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()

    async def _stop(self) -> None:
        await self.recorder.stop()
        # Keep-alive connections the service still holds: end their handlers before the loop closes.
        others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in others:
            task.cancel()
        await asyncio.gather(*others, return_exceptions=True)


@pytest.fixture
def receiver() -> Iterator[WebhookRecorder]:
    threaded = ThreadedRecorder(status=500)
    try:
        yield threaded.recorder
    finally:
        threaded.close()


def parked_items(service: VideohubService, camera: str) -> list[dict[str, Any]]:
    page: dict[str, Any] = service.call("GET", "/api/alerts/dead")
    return [p for p in page["items"] if p["alert"]["camera"] == camera]


def test_a_parked_event_shows_on_the_health_page_and_is_resent_from_it(
    videohub_service_factory: Callable[..., VideohubService],
    receiver: WebhookRecorder,
    new_page: Callable[[], Page],
) -> None:
    hook = {"name": "ops", "url": receiver.url, "secret": "hook-secret-1"}
    service = videohub_service_factory(
        env={
            "VIDEOHUB_DEMO__ALLOW_TEST_SOURCES": "true",
            "VIDEOHUB_ALERTS__WEBHOOKS": json.dumps([hook]),
            "VIDEOHUB_ALERTS__WEBHOOK_MAX_ATTEMPTS": "2",
            "VIDEOHUB_ALERTS__WEBHOOK_BACKOFF_INITIAL_SECONDS": "0.1",
            "VIDEOHUB_ALERTS__WEBHOOK_BACKOFF_MAX_SECONDS": "0.2",
        }
    )
    suffix = uuid.uuid4().hex[:6]
    maintainer, operator = f"maint{suffix}", f"oper{suffix}"
    service.create_user(maintainer, "maintenance")
    service.create_user(operator, "operator")
    # A camera that is switched off (nothing listens on its port): its offline alert is raised at once.
    camera = f"dl-{suffix}"
    service.create_camera(
        camera, f"rtsp://127.0.0.1:{free_port()}/live", name=f"梅里镇水厂{suffix}", mode="always_on"
    )

    page = new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    for _ in range(300):  # parked within seconds: two attempts 0.1 s apart after the alert
        if parked_items(service, camera):
            break
        time.sleep(0.1)
    (stored,) = parked_items(service, camera)
    assert receiver.requests >= 2 and receiver.received == []

    login(page, service.base_url, maintainer, USER_PASSWORD, next_path="/health")
    panel = page.locator("#parked-panel")
    expect(panel).to_be_visible()
    expect(panel.locator("h2")).to_have_text("推送失败（已暂存）")
    item = page.locator(f"#parked-list li.parked[data-camera='{camera}']")
    expect(item).to_have_attribute("data-delivery", stored["delivery"])
    expect(page.locator("#parked-list li.hook[data-hook=ops] .hook-name")).to_have_text("ops")
    expect(item.locator(".what")).to_have_text("告警发生 · 离线")
    expect(item.locator(".camera")).to_have_text(f"梅里镇水厂{suffix}")
    expect(item.locator(".meta")).to_contain_text("已尝试 2 次")
    expect(item.locator(".meta")).to_contain_text("HTTP 500")
    expect(item.locator(".meta")).to_contain_text("暂存于")
    expect(page.locator("#parked-empty")).to_be_hidden()
    screenshot(page, "health_parked_event")

    # The receiver is fixed: re-send from the page; it arrives with the event's own delivery id.
    receiver.status = 200
    item.locator("button.resend").click()
    expect(item).to_have_count(0)
    expect(page.locator(".toast")).to_contain_text("已重发 1 条")
    deliveries = [r.headers["x-videohub-delivery"] for r in receiver.received]
    assert stored["delivery"] in deliveries
    resent = next(r for r in receiver.received if r.headers["x-videohub-delivery"] == stored["delivery"])
    assert (resent.json()["event"], resent.json()["alert"]["camera"]) == ("opened", camera)
    assert parked_items(service, camera) == []

    page.click("[data-testid=lang-switch]")
    expect(panel.locator("h2")).to_have_text("Parked alert deliveries")

    # An operator does not see parked events at all.
    watcher = new_page()
    login(watcher, service.base_url, operator, USER_PASSWORD, next_path="/health")
    expect(watcher.locator("body")).to_have_attribute("data-ready", "1")
    expect(watcher.locator("#parked-panel")).to_be_hidden()
    assert errors == []
