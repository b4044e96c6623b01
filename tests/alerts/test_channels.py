"""Alert channels on the shared delivery: WeCom and DingTalk robots and mail get their lines' events
at least once, robots' "too fast" answers and mail 4xx are retried, refusals a retry cannot change
are parked at once, and one broken channel never holds the others up.

Real Valkey, the real ``AlertService`` delivery tasks; the robots and the mail server are doubles
that check the documented request shapes (``tests/alerts/robots.py``, ``tests/alerts/smtpd.py``).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis

from tests.alerts.robots import DingTalkRobot, WeComRobot
from tests.alerts.smtpd import Certificates, SmtpDouble, make_certificates
from tests.alerts.test_dead_letter import until
from tests.alerts.test_delivery import Running, wait_for
from videohub.alerts.channels.dingtalk import DingTalkChannel
from videohub.alerts.channels.mail import MailChannel
from videohub.alerts.channels.message import Directory
from videohub.alerts.deadletter import Failure
from videohub.alerts.models import Alert, AlertEvent
from videohub.alerts.pace import Pace
from videohub.alerts.service import AlertService
from videohub.logs import redact
from videohub.settings.alerts import AlertSettings
from videohub.settings.channels import DingTalkSettings, MailSettings

WECOM_KEY = "wk-6d0c5e2a-17f4-4b7e-9a51-3c2d8e9f0a11"
DING_TOKEN = "dt-b3a5f1e0c9d84a7b6e2f"
DING_SECRET = "SEC9f1c2b3a4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9"
MAIL_PASSWORD = "m@il-Pa55-w0rd"
LINES = Directory(lines={"public_security": ("公安", "Public Security"), "safety": ("安监", "Work Safety")})


@dataclass
class Doubles:
    wecom: WeComRobot
    ding: DingTalkRobot
    smtp: SmtpDouble


@pytest.fixture
def secrets_in_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEST_WECOM_KEY", WECOM_KEY)
    monkeypatch.setenv("TEST_DING_TOKEN", DING_TOKEN)
    monkeypatch.setenv("TEST_DING_SECRET", DING_SECRET)
    monkeypatch.setenv("TEST_MAIL_PASSWORD", MAIL_PASSWORD)


@pytest.fixture
async def doubles(secrets_in_env: None) -> AsyncIterator[Doubles]:
    found = Doubles(
        WeComRobot(key=WECOM_KEY), DingTalkRobot(token=DING_TOKEN, secret=DING_SECRET), SmtpDouble()
    )
    for double in (found.wecom, found.ding, found.smtp):
        await double.start()
    try:
        yield found
    finally:
        for double in (found.wecom, found.ding, found.smtp):
            await double.stop()


def channel_settings(d: Doubles, **extra: Any) -> AlertSettings:
    """All three channels on the doubles: WeCom for public security, DingTalk for safety, mail for all."""
    channels = {
        "wecom": [
            {
                "name": "ga_wecom",
                "key_env": "TEST_WECOM_KEY",
                "base_url": d.wecom.base_url,
                "lines": ["public_security"],
            }
        ],
        "dingtalk": [
            {
                "name": "aj_ding",
                "token_env": "TEST_DING_TOKEN",
                "secret_env": "TEST_DING_SECRET",
                "base_url": d.ding.base_url,
                "lines": ["safety"],
                "at_mobiles": ["13800000000"],
            }
        ],
        "mail": [
            {
                "name": "ops_mail",
                "host": "127.0.0.1",
                "port": d.smtp.port,
                "security": "none",
                "from_addr": "videohub@example.org",
                "to": ["ops@example.org"],
            }
        ],
    }
    return AlertSettings.model_validate(
        {
            "channels": channels,
            "webhook_backoff_initial_seconds": 0.05,
            "webhook_backoff_max_seconds": 0.2,
            **extra,
        }
    )


async def test_each_channel_gets_its_lines_alerts_in_its_own_format(
    redis: aioredis.Redis, doubles: Doubles
) -> None:
    service = AlertService(redis, channel_settings(doubles), directory=LINES)
    async with Running(service):
        await service.reconcile("ga-1", "public_security", {"offline": ["refused"]})
        await service.reconcile("aj-1", "safety", {"degraded": ["black"]})
        await service.reconcile("ga-1", "public_security", {"offline": ["timeout"]})  # "updated": not sent
        await service.reconcile("ga-1", "public_security", {})
        await wait_for(lambda: len(doubles.smtp.received) == 3)
        await wait_for(lambda: len(doubles.wecom.received) == 2 and len(doubles.ding.received) == 1)
    assert doubles.wecom.problems == [] and doubles.ding.problems == []
    opened, resolved = doubles.wecom.contents()
    assert opened.startswith(
        '## <font color="warning">告警 · 离线</font>\n**（已删除的设备）**　`ga-1`\n> 业务线：公安\n'
    )
    assert "> 原因：连接被拒绝\n" in opened
    assert resolved.startswith('## <font color="info">已恢复 · 离线</font>') and "自动恢复" in resolved
    (ding,) = doubles.ding.messages()
    assert ding["markdown"]["title"] == "告警 · 画面/码流异常 · （已删除的设备）"
    assert "> 业务线：安监\n> 原因：黑屏\n" in ding["markdown"]["text"]
    assert ding["markdown"]["text"].endswith("\n@13800000000")
    assert ding["at"] == {"atMobiles": ["13800000000"], "isAtAll": False}
    subjects = [m.message()["Subject"] for m in doubles.smtp.received]
    assert subjects == [
        "【视频监控】告警 · 离线：（已删除的设备）（公安）",
        "【视频监控】告警 · 画面/码流异常：（已删除的设备）（安监）",
        "【视频监控】已恢复 · 离线：（已删除的设备）（公安）",
    ]
    first = doubles.smtp.received[0]
    assert (first.mail_from, first.rcpt_to) == ("videohub@example.org", ["ops@example.org"])
    message = first.message()
    assert message["Message-ID"] == f"<{message['X-Videohub-Delivery']}.ops_mail@example.org>"


async def test_a_channel_sends_the_events_it_names(redis: aioredis.Redis, doubles: Doubles) -> None:
    settings = channel_settings(doubles)
    mail = settings.channels.mail[0].model_copy(update={"events": ["updated", "resolved"]})
    channels = settings.channels.model_copy(update={"mail": [mail]})
    service = AlertService(redis, settings.model_copy(update={"channels": channels}), directory=LINES)
    async with Running(service):
        await service.reconcile("ga-1", "public_security", {"offline": ["refused"]})
        await service.reconcile("ga-1", "public_security", {"offline": ["timeout"]})
        await service.reconcile("ga-1", "public_security", {})
        await wait_for(lambda: len(doubles.smtp.received) == 2 and len(doubles.wecom.received) == 2)
    assert [m.message()["X-Videohub-Event"] for m in doubles.smtp.received] == ["updated", "resolved"]
    assert [c.split("\n")[0] for c in doubles.wecom.contents()] == [
        '## <font color="warning">告警 · 离线</font>',
        '## <font color="info">已恢复 · 离线</font>',
    ]


async def test_too_fast_and_try_later_answers_are_retried_then_delivered(
    redis: aioredis.Redis, doubles: Doubles
) -> None:
    doubles.wecom.script = [45009, 45009]  # "api freq out of limit"
    doubles.ding.script = [130101]  # "send too fast"
    doubles.smtp.data_script = ["451 4.3.0 try again later"]
    service = AlertService(redis, channel_settings(doubles), directory=LINES)
    async with Running(service):
        await service.reconcile("ga-1", "public_security", {"offline": ["timeout"]})
        await service.reconcile("aj-1", "safety", {"offline": ["timeout"]})
        await wait_for(lambda: len(doubles.wecom.received) == 1 and len(doubles.ding.received) == 1)
        await wait_for(lambda: len(doubles.smtp.received) == 2)
    assert len(doubles.wecom.requests) == 3 and len(doubles.ding.requests) == 2
    assert doubles.smtp.connections == 3  # the 451 then both mails
    assert {d.name: d.stats.failures for d in service.deliveries} == {
        "ga_wecom": 2,
        "aj_ding": 1,
        "ops_mail": 1,
    }
    for name in ("ga_wecom", "aj_ding", "ops_mail"):
        assert await service.dead.count(name) == 0


async def test_refusals_a_retry_cannot_change_are_parked_at_once(
    redis: aioredis.Redis, doubles: Doubles
) -> None:
    doubles.wecom.key = "another-robot-key"  # ours is refused: 93000
    doubles.ding.secret = "SECnot-the-one-we-sign-with"  # 310000 sign not match
    doubles.smtp.rcpt_reply = "550 5.1.1 no such user"
    service = AlertService(redis, channel_settings(doubles), directory=LINES)  # default: 30 attempts
    async with Running(service):
        await service.reconcile("ga-1", "public_security", {"offline": ["timeout"]})
        await service.reconcile("aj-1", "safety", {"offline": ["timeout"]})

        async def all_parked() -> bool:
            counts = await service.dead.counts(["ga_wecom", "aj_ding", "ops_mail"])
            return counts == {"ga_wecom": 1, "aj_ding": 1, "ops_mail": 2}

        await until(all_parked)
    assert len(doubles.wecom.requests) == 1 and len(doubles.ding.requests) == 1
    (wecom,) = await service.dead.list("ga_wecom", channel="wecom")
    (ding,) = await service.dead.list("aj_ding", channel="dingtalk")
    mails = await service.dead.list("ops_mail", channel="mail")
    assert (wecom.channel, wecom.attempts, wecom.last_status) == ("wecom", 1, 200)
    assert wecom.last_error == "errcode 93000: invalid webhook url, hint: [double]"
    assert (ding.channel, ding.attempts, ding.last_error) == ("dingtalk", 1, "errcode 310000: sign not match")
    assert {(m.channel, m.attempts, m.last_error) for m in mails} == {
        ("mail", 1, "SMTP 550: recipients refused")
    }
    assert (wecom.alert.camera, ding.alert.camera) == ("ga-1", "aj-1")


async def test_a_broken_wecom_robot_does_not_hold_up_dingtalk_or_mail(
    redis: aioredis.Redis, doubles: Doubles
) -> None:
    await doubles.wecom.stop()  # down: every attempt is refused and retried
    settings = channel_settings(doubles, webhook_max_attempts=10_000)
    wide = settings.channels.model_copy(
        update={
            "wecom": [settings.channels.wecom[0].model_copy(update={"lines": []})],
            "dingtalk": [settings.channels.dingtalk[0].model_copy(update={"lines": []})],
        }
    )
    service = AlertService(redis, settings.model_copy(update={"channels": wide}), directory=LINES)
    async with Running(service):
        for i in range(5):
            await service.reconcile(f"ga-{i}", "public_security", {"offline": ["refused"]})
        await wait_for(lambda: len(doubles.ding.received) == 5 and len(doubles.smtp.received) == 5)
        wecom = service.delivery("ga_wecom")
        assert wecom.stats.retrying and wecom.stats.delivered == 0  # still on its first event
        assert wecom.stats.last_error is not None and wecom.stats.last_error.startswith("ConnectError")
        await doubles.wecom.start()
        await wait_for(lambda: len(doubles.wecom.received) == 5)
    assert [m["markdown"]["title"].split(" · ")[0] for m in doubles.ding.messages()] == ["告警"] * 5


async def test_a_robot_at_its_rate_limit_leaves_later_events_unread(
    redis: aioredis.Redis, doubles: Doubles
) -> None:
    """Two messages a minute: the third event waits in the stream, not pending in this worker's name
    (where another worker would take it over as if this one had died, and send it beside it)."""
    settings = channel_settings(doubles)
    wecom = settings.channels.wecom[0].model_copy(update={"max_per_minute": 2})
    channels = settings.channels.model_copy(update={"wecom": [wecom]})
    service = AlertService(redis, settings.model_copy(update={"channels": channels}), directory=LINES)
    async with Running(service):
        for i in range(3):
            await service.reconcile(f"ga-{i}", "public_security", {"offline": ["refused"]})
        await wait_for(lambda: len(doubles.wecom.received) == 2 and len(doubles.smtp.received) == 3)
        await asyncio.sleep(0.5)  # well within the minute the third one waits for
        pending = await redis.xpending("vh:alerts:events", "wecom:ga_wecom")
        (group,) = [g for g in await redis.xinfo_groups("vh:alerts:events") if g["name"] == "wecom:ga_wecom"]
    assert len(doubles.wecom.received) == 2 and doubles.wecom.problems == []
    assert pending["pending"] == 0 and group["lag"] == 1


async def test_an_echoed_key_never_reaches_the_parked_event(redis: aioredis.Redis, doubles: Doubles) -> None:
    """A robot that repeats the request (key and all) in its error: the stored error names no key."""
    doubles.wecom.echo_query = True
    doubles.wecom.script = [40058]  # a refusal: parked at once, with the robot's errmsg
    doubles.ding.echo_query = True
    doubles.ding.script = [300005]
    service = AlertService(redis, channel_settings(doubles), directory=LINES)
    async with Running(service):
        await service.reconcile("ga-1", "public_security", {"offline": ["timeout"]})
        await service.reconcile("aj-1", "safety", {"offline": ["timeout"]})

        async def parked() -> bool:
            return await service.dead.counts(["ga_wecom", "aj_ding"]) == {"ga_wecom": 1, "aj_ding": 1}

        await until(parked)
    (wecom,) = await service.dead.list("ga_wecom", channel="wecom")
    (ding,) = await service.dead.list("aj_ding", channel="dingtalk")
    assert wecom.last_error.startswith(
        "errcode 40058: scripted error 40058, request /cgi-bin/webhook/send?key="
    )
    assert ding.last_error.startswith(
        "errcode 300005: scripted error 300005, request /robot/send?access_token="
    )
    stored = str(await redis.xrange("vh:alerts:dead:ga_wecom")) + str(
        await redis.xrange("vh:alerts:dead:aj_ding")
    )
    for secret in (WECOM_KEY, DING_TOKEN, DING_SECRET):
        assert secret not in wecom.last_error + ding.last_error and secret not in stored


def test_robot_urls_are_masked_in_any_log_line() -> None:
    """httpx (at debug level) and any other library that logs a robot's URL: no key, token or sign."""
    wecom = "https://qyapi.weixin.qq.com/cgi-bin/webhook/send"
    lines = [
        f'HTTP Request: POST {wecom}?key={WECOM_KEY} "HTTP/1.1 200 OK"',
        f"POST https://oapi.dingtalk.com/robot/send?access_token={DING_TOKEN}&timestamp=1&sign=N3g%2F%3D",
    ]
    masked = [redact(line) for line in lines]
    assert masked == [
        f'HTTP Request: POST {wecom}?key=*** "HTTP/1.1 200 OK"',
        "POST https://oapi.dingtalk.com/robot/send?access_token=***&timestamp=1&sign=***",
    ]


def sample_event() -> AlertEvent:
    from datetime import UTC, datetime

    now = datetime.now(UTC)
    alert = Alert(
        id="a1",
        camera="ga-1",
        line="public_security",
        kind="offline",
        reasons=["eof"],
        opened_at=now,
        updated_at=now,
    )
    return AlertEvent(event="opened", alert=alert)


async def test_dingtalk_signs_each_attempt_with_the_time_of_that_attempt(doubles: Doubles) -> None:
    """The double checks the signature with its own copy of the secret and refuses a timestamp more
    than an hour off (as DingTalk does): a channel whose clock is two hours behind is refused."""
    config = DingTalkSettings(
        name="aj_ding",
        token_env="TEST_DING_TOKEN",
        secret_env="TEST_DING_SECRET",
        base_url=doubles.ding.base_url,
    )
    async with httpx.AsyncClient() as client:
        late = DingTalkChannel(
            config, client, LINES, timeout=5, park_statuses=[], clock=lambda: time.time() - 7200
        )
        payload = await late.render("1-0", sample_event())
        failure = await late.send("1-0", "opened", payload)
        assert failure is not None and failure.final and failure.error == "errcode 310000: invalid timestamp"
        now = DingTalkChannel(config, client, LINES, timeout=5, park_statuses=[])
        assert await now.send("1-0", "opened", payload) is None
        assert await now.send("1-0", "opened", payload) is None  # a re-send: same body, new signature
    first, second = doubles.ding.received
    assert first.body == second.body == payload
    assert doubles.ding.problems == ["invalid timestamp"]


def test_pace_keeps_at_most_n_sends_in_any_minute() -> None:
    now = [1000.0]
    pace = Pace(3, clock=lambda: now[0])
    assert [pace.take() for _ in range(4)] == [True, True, True, False]
    assert pace.wait_seconds() == 60.0
    now[0] += 30
    assert not pace.take() and pace.wait_seconds() == 30.0
    now[0] += 30  # the first three leave the window
    assert [pace.take() for _ in range(4)] == [True, True, True, False]
    now[0] += 1
    pace.note()  # a re-send asked for by a user counts, even beyond the limit
    now[0] += 1
    assert pace.wait_seconds() == 58.0  # until the three before it leave the window
    now[0] += 58
    assert pace.take() and pace.take() and not pace.take()  # the noted one is still in it


# -- mail over TLS ---------------------------------------------------------------------------------


@pytest.fixture
def certs(tmp_path: Path) -> Certificates:
    return make_certificates(tmp_path, "mail")


def mail_channel(smtp: SmtpDouble, **extra: Any) -> MailChannel:
    config = MailSettings.model_validate(
        {
            "name": "ops_mail",
            "host": "127.0.0.1",
            "port": smtp.port,
            "from_addr": "videohub@example.org",
            "to": ["ops@example.org"],
            "username": "videohub",
            "password_env": "TEST_MAIL_PASSWORD",
            "timeout_seconds": 5,
            **extra,
        }
    )
    return MailChannel(config, LINES)


async def send_one(channel: MailChannel) -> tuple[bytes, Failure | None]:
    payload = await channel.render("1-0", sample_event())
    try:
        return payload, await channel.send("1-0", "opened", payload)
    finally:
        await channel.aclose()


async def test_mail_with_starttls_and_a_login(secrets_in_env: None, certs: Certificates) -> None:
    smtp = SmtpDouble(tls=certs.server, users={"videohub": MAIL_PASSWORD})
    await smtp.start()
    try:
        payload, failure = await send_one(mail_channel(smtp, security="starttls", ca_file=str(certs.ca_file)))
    finally:
        await smtp.stop()
    assert failure is None
    (mail,) = smtp.received
    assert (mail.tls, mail.user, mail.data) == (True, "videohub", payload)
    assert smtp.logins == [("videohub", MAIL_PASSWORD, True)]


async def test_mail_over_ssl(secrets_in_env: None, certs: Certificates) -> None:
    smtp = SmtpDouble(tls=certs.server, implicit_tls=True, users={"videohub": MAIL_PASSWORD})
    await smtp.start()
    try:
        _payload, failure = await send_one(mail_channel(smtp, security="ssl", ca_file=str(certs.ca_file)))
    finally:
        await smtp.stop()
    assert failure is None and [m.tls for m in smtp.received] == [True]


async def test_mail_never_logs_in_to_a_server_whose_certificate_it_cannot_verify(
    secrets_in_env: None, tmp_path: Path, certs: Certificates
) -> None:
    """A server (or a man in the middle) with a certificate from a CA we do not trust gets no password."""
    other = make_certificates(tmp_path, "other")
    for security, implicit in (("starttls", False), ("ssl", True)):
        smtp = SmtpDouble(tls=certs.server, implicit_tls=implicit, users={"videohub": MAIL_PASSWORD})
        await smtp.start()
        try:
            _payload, failure = await send_one(
                mail_channel(smtp, security=security, ca_file=str(other.ca_file))
            )
        finally:
            await smtp.stop()
        assert smtp.logins == [] and smtp.received == [], security
        assert failure is not None and failure.error.startswith("SSLCertVerificationError"), security


async def test_mail_never_sends_a_password_in_clear_when_starttls_is_not_offered(
    secrets_in_env: None,
) -> None:
    smtp = SmtpDouble(users={"videohub": MAIL_PASSWORD})  # no certificate: no STARTTLS in EHLO
    await smtp.start()
    try:
        _payload, failure = await send_one(mail_channel(smtp, security="starttls"))
    finally:
        await smtp.stop()
    assert smtp.logins == [] and smtp.received == []
    assert failure is not None and failure.final and "no STARTTLS" in failure.error


async def test_a_refused_login_is_parked_without_the_servers_text(
    secrets_in_env: None, certs: Certificates
) -> None:
    smtp = SmtpDouble(tls=certs.server, users={"videohub": "another password"})
    await smtp.start()
    try:
        _payload, failure = await send_one(mail_channel(smtp, ca_file=str(certs.ca_file)))
    finally:
        await smtp.stop()
    assert failure == Failure("SMTP 535: login refused", final=True)
