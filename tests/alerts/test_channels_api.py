"""Parked events of the robots and mail in the parked-events API: listed with their channel, re-sent
(one, or all within a robot's rate limit), audited, and never showing a key, token or password.

The app with its alert service on a real Valkey; robots and mail server are the doubles. The
camera is registered through the API, so messages name it as the registry does.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.alerts.robots import DingTalkRobot, WeComRobot
from tests.alerts.smtpd import SmtpDouble
from tests.alerts.test_channels import DING_SECRET, DING_TOKEN, WECOM_KEY, Doubles
from tests.alerts.test_dead_letter_api import alerts_of
from tests.apiclient import Api, api_session, camera_body
from tests.conftest import make_settings
from videohub.services import Parts
from videohub.store import Store

SECRETS = (WECOM_KEY, DING_TOKEN, DING_SECRET)


@pytest.fixture
async def broken(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Doubles]:
    """Doubles that refuse us as the real services would refuse a bad key, a bad sign, a bad address."""
    monkeypatch.setenv("TEST_WECOM_KEY", WECOM_KEY)
    monkeypatch.setenv("TEST_DING_TOKEN", DING_TOKEN)
    monkeypatch.setenv("TEST_DING_SECRET", DING_SECRET)
    found = Doubles(
        WeComRobot(key="not-our-key"),
        DingTalkRobot(token=DING_TOKEN, secret="SECnot-ours"),
        SmtpDouble(rcpt_reply="550 5.1.1 no such user"),
    )
    for double in (found.wecom, found.ding, found.smtp):
        await double.start()
    try:
        yield found
    finally:
        for double in (found.wecom, found.ding, found.smtp):
            await double.stop()


def fix(d: Doubles) -> None:
    d.wecom.key, d.ding.secret, d.smtp.rcpt_reply = WECOM_KEY, DING_SECRET, None


@pytest.fixture
async def api(store: Store, broken: Doubles) -> AsyncIterator[Api]:
    channels = {
        "wecom": [
            {
                "name": "ga_wecom",
                "key_env": "TEST_WECOM_KEY",
                "base_url": broken.wecom.base_url,
                "max_per_minute": 5,
            }
        ],
        "dingtalk": [
            {
                "name": "ga_ding",
                "token_env": "TEST_DING_TOKEN",
                "secret_env": "TEST_DING_SECRET",
                "base_url": broken.ding.base_url,
            }
        ],
        "mail": [
            {
                "name": "ga_mail",
                "host": "127.0.0.1",
                "port": broken.smtp.port,
                "security": "none",
                "from_addr": "videohub@example.org",
                "to": ["duty@example.org"],
            }
        ],
    }
    settings = make_settings(
        admin_password="admin-pass-123",
        alerts={
            "channels": channels,
            "webhook_backoff_initial_seconds": 0.05,
            "webhook_backoff_max_seconds": 0.1,
        },
        health={"enabled": False},
        server__public_url="https://videohub.example.org/",
    )
    async with api_session(settings, store, parts=Parts(health=True)) as session:
        yield session


async def parked(api: Api, counts: dict[str, int]) -> dict[str, Any]:
    deadline = asyncio.get_running_loop().time() + 20
    while True:
        response = await api.client.get("/api/alerts/dead", headers=api.auth("maintenance"))
        assert response.status_code == 200, response.text
        for secret in SECRETS:
            assert secret not in response.text
        body: dict[str, Any] = response.json()
        if body["counts"] == counts and len(body["items"]) == sum(counts.values()):  # counted after listing
            return body
        assert asyncio.get_running_loop().time() < deadline, f"parked: {body['counts']}"
        await asyncio.sleep(0.1)


async def register(api: Api) -> str:
    body = camera_body(name="梅里镇水厂 1 号", area="梅里镇东")
    response = await api.client.post("/api/cameras", json=body, headers=api.auth("admin"))
    assert response.status_code == 201, response.text
    camera_id: str = response.json()["id"]
    return camera_id


async def test_parked_robot_and_mail_events_are_listed_resent_and_audited(api: Api, broken: Doubles) -> None:
    camera = await register(api)
    await alerts_of(api).reconcile(camera, "public_security", {"offline": ["timeout"]})
    page = await parked(api, {"ga_wecom": 1, "ga_ding": 1, "ga_mail": 1})
    assert page["channels"] == {"ga_wecom": "wecom", "ga_ding": "dingtalk", "ga_mail": "mail"}
    by_hook = {item["hook"]: item for item in page["items"]}
    assert {h: (i["channel"], i["attempts"], i["last_error"]) for h, i in by_hook.items()} == {
        "ga_wecom": ("wecom", 1, "errcode 93000: invalid webhook url, hint: [double]"),
        "ga_ding": ("dingtalk", 1, "errcode 310000: sign not match"),
        "ga_mail": ("mail", 1, "SMTP 550: recipients refused"),
    }
    assert {i["alert"]["camera"] for i in page["items"]} == {camera}
    first_wecom = broken.wecom.requests[0].json()

    fix(broken)
    for hook, item in by_hook.items():
        response = await api.client.post(
            f"/api/alerts/dead/{hook}/{item['id']}/resend", headers=api.auth("maintenance")
        )
        assert response.json() == {"resent": 1, "failed": None, "remaining": 0}, hook
    # The robots get the message as it was rendered when the alert was raised, named as registered.
    (wecom,) = broken.wecom.received
    assert wecom.json() == first_wecom
    content = wecom.json()["markdown"]["content"]
    assert content.startswith(
        f'## <font color="warning">告警 · 离线</font>\n**梅里镇水厂 1 号**　`{camera}`\n'
    )
    assert "> 区域：梅里镇东\n> 原因：连接超时\n" in content
    assert content.endswith("\n[打开运维监测](https://videohub.example.org/health)")
    (ding,) = broken.ding.received
    assert ding.json()["markdown"]["title"] == "告警 · 离线 · 梅里镇水厂 1 号"
    (mail,) = broken.smtp.received
    assert mail.message()["Subject"] == "【视频监控】告警 · 离线：梅里镇水厂 1 号（公安）"
    assert mail.message()["X-Videohub-Delivery"] == by_hook["ga_mail"]["delivery"]
    assert broken.wecom.problems == ["invalid webhook url, hint: [double]"]  # the first, refused, attempt

    audit = (await api.client.get("/api/audit?limit=20", headers=api.auth("admin"))).json()["items"]
    actions = sorted((e["action"], e["target"]) for e in audit if e["action"].endswith(".resend"))
    assert actions == sorted(
        [
            ("wecom.resend", f"ga_wecom/{by_hook['ga_wecom']['id']}"),
            ("dingtalk.resend", f"ga_ding/{by_hook['ga_ding']['id']}"),
            ("mail.resend", f"ga_mail/{by_hook['ga_mail']['id']}"),
        ]
    )
    for secret in SECRETS:
        assert secret not in str(audit)
    metrics = (await api.client.get("/metrics", headers=api.auth("admin"))).text
    assert re.search(r'videohub_webhook_parked\{webhook="ga_wecom",worker="[a-z0-9-]+"\} 0\.0', metrics)
    for secret in SECRETS:
        assert secret not in metrics


async def test_resend_all_to_a_robot_stops_at_its_rate_limit(api: Api, broken: Doubles) -> None:
    """ga_wecom takes 5 messages a minute: 3 refused first attempts, so a re-send-all sends 2 now and
    leaves the third parked, without an error (the page asks again later)."""
    camera = await register(api)
    service = alerts_of(api)
    await service.reconcile(camera, "public_security", {"offline": ["timeout"]})
    await service.reconcile(camera, "public_security", {"offline": ["timeout"], "degraded": ["black"]})
    await service.reconcile(camera, "public_security", {})
    await parked(api, {"ga_wecom": 4, "ga_ding": 4, "ga_mail": 4})  # opened ×2, resolved ×2
    assert len(broken.wecom.requests) == 4  # the limit is 5 a minute: all four went out
    fix(broken)
    response = await api.client.post("/api/alerts/dead/ga_wecom/resend-all", headers=api.auth("maintenance"))
    assert response.json() == {"resent": 1, "failed": None, "remaining": 3}
    response = await api.client.post("/api/alerts/dead/ga_wecom/resend-all", headers=api.auth("maintenance"))
    assert response.json() == {"resent": 0, "failed": None, "remaining": 3}
    response = await api.client.post("/api/alerts/dead/ga_ding/resend-all", headers=api.auth("maintenance"))
    assert response.json() == {"resent": 4, "failed": None, "remaining": 0}
    assert len(broken.wecom.received) == 1 and len(broken.ding.received) == 4


async def test_operators_and_line_admins_see_no_parked_channel_events(api: Api, broken: Doubles) -> None:
    camera = await register(api)
    await alerts_of(api).reconcile(camera, "public_security", {"offline": ["timeout"]})
    entry = (await parked(api, {"ga_wecom": 1, "ga_ding": 1, "ga_mail": 1}))["items"][0]
    for who in ("operator", "ps_admin"):
        for method, path in (
            ("GET", "/api/alerts/dead"),
            ("POST", f"/api/alerts/dead/{entry['hook']}/{entry['id']}/resend"),
            ("POST", f"/api/alerts/dead/{entry['hook']}/resend-all"),
            ("DELETE", f"/api/alerts/dead/{entry['hook']}/{entry['id']}"),
        ):
            response = await api.client.request(method, path, headers=api.auth(who))
            assert response.status_code == 403, (who, method, path)
