"""Parked robot events on the health page, in real Chromium against a real service process.

A WeCom robot refuses our key and a DingTalk robot our signature (the doubles answer 93000 and
310000, as the services do): the offline alert of a switched-off camera is parked at once on
both, and the page lists each under its channel (企业微信, 钉钉) with the robot's error. Once the
DingTalk robot takes our signature, maintenance re-sends from the page and the robot gets it.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from tests.alerts.recorder import free_port
from tests.alerts.robots import DingTalkRobot, InThread, WeComRobot
from tests.fixtures.browser import login, screenshot
from tests.fixtures.service import USER_PASSWORD, VideohubService

pytestmark = pytest.mark.e2e

WECOM_KEY = "page-wecom-" + uuid.uuid4().hex
DING_TOKEN = "page-ding-" + uuid.uuid4().hex
DING_SECRET = "SECpage" + uuid.uuid4().hex


@pytest.fixture
def robots() -> Iterator[tuple[WeComRobot, DingTalkRobot]]:
    thread = InThread()
    wecom = WeComRobot(key="another-robot")
    ding = DingTalkRobot(token=DING_TOKEN, secret="SECanother")
    thread.run(wecom.start())
    thread.run(ding.start())
    try:
        yield wecom, ding
    finally:
        thread.run(wecom.stop())
        thread.run(ding.stop())
        thread.close()


def parked_items(service: VideohubService, camera: str) -> list[dict[str, Any]]:
    page: dict[str, Any] = service.call("GET", "/api/alerts/dead")
    return [p for p in page["items"] if p["alert"]["camera"] == camera]


def test_parked_robot_events_show_under_their_channel_and_are_resent_from_the_page(
    videohub_service_factory: Callable[..., VideohubService],
    robots: tuple[WeComRobot, DingTalkRobot],
    new_page: Callable[[], Page],
) -> None:
    wecom, ding = robots
    service = videohub_service_factory(
        env={
            "PAGE_WECOM_KEY": WECOM_KEY,
            "PAGE_DING_TOKEN": DING_TOKEN,
            "PAGE_DING_SECRET": DING_SECRET,
            "VIDEOHUB_ALERTS__CHANNELS__WECOM": json.dumps(
                [{"name": "ga_wecom", "key_env": "PAGE_WECOM_KEY", "base_url": wecom.base_url}]
            ),
            "VIDEOHUB_ALERTS__CHANNELS__DINGTALK": json.dumps(
                [
                    {
                        "name": "ga_ding",
                        "token_env": "PAGE_DING_TOKEN",
                        "secret_env": "PAGE_DING_SECRET",
                        "base_url": ding.base_url,
                    }
                ]
            ),
        }
    )
    suffix = uuid.uuid4().hex[:6]
    maintainer = f"maint{suffix}"
    service.create_user(maintainer, "maintenance")
    camera = f"ga-p{suffix}"
    service.create_camera(
        camera, f"rtsp://127.0.0.1:{free_port()}/live", name=f"梅里镇泵站{suffix}", mode="always_on"
    )
    for _ in range(300):
        if len(parked_items(service, camera)) == 2:
            break
        time.sleep(0.1)
    stored = {p["hook"]: p for p in parked_items(service, camera)}
    assert set(stored) == {"ga_wecom", "ga_ding"} and ding.received == []

    page = new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    login(page, service.base_url, maintainer, USER_PASSWORD, next_path="/health")
    groups = page.locator("#parked-list li.hook")
    expect(groups).to_have_count(2)
    wecom_group = page.locator("#parked-list li.hook[data-hook=ga_wecom]")
    ding_group = page.locator("#parked-list li.hook[data-hook=ga_ding]")
    expect(wecom_group.locator(".channel")).to_have_text("企业微信")
    expect(ding_group.locator(".channel")).to_have_text("钉钉")
    expect(wecom_group.locator(".meta")).to_contain_text("errcode 93000: invalid webhook url")
    item = ding_group.locator(f"li.parked[data-camera='{camera}']")
    expect(item.locator(".what")).to_have_text("告警发生 · 离线")
    expect(item.locator(".camera")).to_have_text(f"梅里镇泵站{suffix}")
    expect(item.locator(".meta")).to_contain_text("errcode 310000: sign not match")
    expect(item.locator(".meta")).to_contain_text("已尝试 1 次")
    screenshot(page, "health_parked_robots")
    for secret in (WECOM_KEY, DING_TOKEN, DING_SECRET):
        assert secret not in page.content()

    ding.secret = DING_SECRET  # the robot's 加签 secret now matches ours
    item.locator("button.resend").click()
    expect(item).to_have_count(0)
    expect(page.locator(".toast")).to_contain_text("已重发 1 条")
    (message,) = ding.messages()
    assert message["markdown"]["title"] == f"告警 · 离线 · 梅里镇泵站{suffix}"
    expect(wecom_group).to_have_count(1)  # still refused: still parked

    page.click("[data-testid=lang-switch]")
    expect(wecom_group.locator(".channel")).to_have_text("WeCom")
    assert errors == []
