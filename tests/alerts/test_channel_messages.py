"""What each channel's message says and how it is written: WeCom and DingTalk markdown, the mail.

Exact texts, the words the health page uses, the robots' size limit, and user text (camera names,
areas, notes: typed by registry and maintenance users) kept inert: no link, mention, heading, tag,
mail header or HTML can be made from it.
"""

from __future__ import annotations

import email
import email.policy
import re
from dataclasses import replace
from datetime import UTC, datetime
from email.message import EmailMessage, MIMEPart
from typing import get_args

from videohub.alerts.channels import strings
from videohub.alerts.channels.dingtalk import dingtalk_markdown, dingtalk_sign
from videohub.alerts.channels.mail import mail_message, mail_subject, mail_text
from videohub.alerts.channels.message import Facts
from videohub.alerts.channels.wecom import wecom_markdown
from videohub.alerts.models import EventType
from videohub.resources import web_dir
from videohub.settings.channels import MailSettings

OPENED = Facts(
    event="opened",
    kind="offline",
    camera_id="ga-0012",
    camera_name="梅里镇水厂 1 号",
    area="梅里镇",
    line=("公安", "Public Security"),
    reasons=["refused", "stalled"],
    opened_at=datetime(2025, 11, 26, 9, 40, 0, tzinfo=UTC),
    link="https://vh.example.org/health",
)
ACKED = replace(
    OPENED,
    event="acknowledged",
    acked_by="wang_li",
    acked_at=datetime(2025, 11, 26, 9, 45, 30, tzinfo=UTC),
    ack_note="已派人去现场",
)
RESOLVED = replace(
    ACKED, event="resolved", resolved_by="auto", resolved_at=datetime(2025, 11, 26, 10, 2, 0, tzinfo=UTC)
)

HOSTILE = '水厂\n# 紧急 [点此登录](http://evil.example/login) <font color="warning">@all</font> **x** `y` ![i](http://evil.example/i.png)'


def js_strings(lang: str) -> dict[str, str]:
    """The health page's strings of one language (web/health/strings.js)."""
    source = (web_dir() / "health" / "strings.js").read_text(encoding="utf-8")
    block = source.split(f'"{lang}": {{' if lang == "zh-CN" else f"{lang}: {{", 1)[1].split("\n  },", 1)[0]
    return dict(re.findall(r'^\s*"([^"]+)": "([^"]*)",$', block, flags=re.M))


def test_the_messages_use_the_words_of_the_health_page() -> None:
    for lang, index in (("zh-CN", 0), ("en", 1)):
        page = js_strings(lang)
        reasons = {k.removeprefix("reason."): v for k, v in page.items() if k.startswith("reason.")}
        assert {code: words[index] for code, words in strings.REASONS.items()} == reasons
        kinds = {k.removeprefix("health.alert.kind."): v for k, v in page.items() if ".alert.kind." in k}
        assert {code: words[index] for code, words in strings.KINDS.items()} == kinds
        assert strings.EVENTS["acknowledged"][index] == page["health.alert.state.acknowledged"]
        assert strings.EVENTS["resolved"][index] == page["health.alert.state.resolved"]
        assert strings.EVENTS["updated"][index] == page["health.parked.event.updated"]


def test_wecom_markdown_of_an_opened_alert() -> None:
    assert wecom_markdown(OPENED) == (
        '## <font color="warning">告警 · 离线</font>\n'
        "**梅里镇水厂 1 号**　`ga-0012`\n"
        "> 业务线：公安\n"
        "> 区域：梅里镇\n"
        "> 原因：连接被拒绝、码流中断\n"
        "> 发生时间：2025-11-26 17:40:00\n"
        "[打开运维监测](https://vh.example.org/health)"
    )


def test_wecom_markdown_of_an_acknowledged_and_a_resolved_alert() -> None:
    assert wecom_markdown(replace(ACKED, link=None)).splitlines() == [
        '## <font color="comment">已确认 · 离线</font>',
        "**梅里镇水厂 1 号**　`ga-0012`",
        "> 业务线：公安",
        "> 区域：梅里镇",
        "> 原因：连接被拒绝、码流中断",
        "> 发生时间：2025-11-26 17:40:00",
        "> 确认：2025-11-26 17:45:30，wang＿li（备注：已派人去现场）",
    ]
    lines = wecom_markdown(RESOLVED).splitlines()
    assert lines[0] == '## <font color="info">已恢复 · 离线</font>'
    assert lines[-2:] == [
        "> 恢复：2025-11-26 18:02:00，自动恢复",
        "[打开运维监测](https://vh.example.org/health)",
    ]
    by_hand = wecom_markdown(replace(RESOLVED, resolved_by="zhao", resolve_note="更换网线"))
    assert "> 恢复：2025-11-26 18:02:00，由 zhao 解除（备注：更换网线）" in by_hand


def test_a_deleted_camera_and_unknown_reasons_still_make_a_message() -> None:
    text = wecom_markdown(replace(OPENED, camera_name=None, area="", reasons=["black", "new_reason"]))
    assert "**（已删除的设备）**　`ga-0012`" in text
    assert "> 原因：黑屏、new＿reason" in text and "区域" not in text


def test_dingtalk_markdown_title_text_and_mentions() -> None:
    title, text = dingtalk_markdown(OPENED, ["13800000000"])
    assert title == "告警 · 离线 · 梅里镇水厂 1 号"
    assert text == (
        "#### 告警 · 离线\n"
        "**梅里镇水厂 1 号**（ga-0012）\n"
        "> 业务线：公安\n"
        "> 区域：梅里镇\n"
        "> 原因：连接被拒绝、码流中断\n"
        "> 发生时间：2025-11-26 17:40:00\n"
        "[打开运维监测](https://vh.example.org/health)\n"
        "@13800000000"
    )
    title, text = dingtalk_markdown(RESOLVED)
    assert title == "已恢复 · 离线 · 梅里镇水厂 1 号"
    assert text.splitlines()[-2] == "> 恢复：2025-11-26 18:02:00，自动恢复"


def test_dingtalk_sign_is_the_documented_hmac() -> None:
    # Computed by hand: base64(HMAC-SHA256(key=secret, msg="<timestamp>\n<secret>")), URL-encoded.
    import base64
    import hashlib
    import hmac
    from urllib.parse import unquote_plus

    secret, ts = "SECabc+/=", 1764150000000
    expected = base64.b64encode(
        hmac.new(secret.encode(), f"{ts}\n{secret}".encode(), hashlib.sha256).digest()
    )
    signed = dingtalk_sign(secret, ts)
    assert unquote_plus(signed) == expected.decode()
    assert not set(signed) & set("+/=")  # encoded for a query string


def test_robot_messages_keep_a_hostile_camera_name_inert() -> None:
    """A line admin names a camera so that the maintenance group would see a phishing link, a heading,
    a coloured @all, an image: the robots must show the characters, never act on them."""
    facts = replace(OPENED, camera_name=HOSTILE, area="<b>区</b>](http://x)", ack_note="[x](http://evil)")
    facts = replace(facts, event="acknowledged", acked_by="li", acked_at=OPENED.opened_at, link=None)
    wecom = wecom_markdown(facts)
    _title, ding = dingtalk_markdown(facts)
    for text in (wecom, ding):
        body = text.split("\n", 1)[1]  # below our own headline
        assert "http://evil" not in body and "](" not in body and "<font" not in body and "<b>" not in body
        assert "**x**" not in body and "`y`" not in body and "@all" not in body and "![" not in body
        assert "\n# " not in text and text.count("\n") == len(text.splitlines()) - 1
        assert "水厂 ＃ 紧急 ［点此登录］（http：//evil.example/login）" in body
    assert wecom.count("<font") == 1  # our own headline's


def test_robot_content_stays_within_4096_bytes() -> None:
    long = replace(
        RESOLVED,
        camera_name="测" * 64,
        area="区" * 64,
        reasons=list(strings.REASONS),
        acked_by="u" * 32,
        ack_note="备" * 500,
        resolved_by="v" * 32,
        resolve_note="注" * 500,
    )
    text = wecom_markdown(long)
    assert len(text.encode()) <= 4096
    assert "备" * 199 + "…" in text and "备" * 200 not in text  # notes are cut, marked
    assert text.endswith("[打开运维监测](https://vh.example.org/health)")
    assert len(dingtalk_markdown(long)[1].encode()) <= 4096


MAIL = MailSettings(
    name="ops_mail",
    host="smtp.example.org",
    from_addr="videohub@Example.ORG",
    to=["ops@example.org", "duty@example.org"],
)


def parsed(message: EmailMessage) -> EmailMessage:
    out = email.message_from_bytes(message.as_bytes(), policy=email.policy.default)
    assert isinstance(out, EmailMessage)
    return out


def content(part: MIMEPart | None) -> str:
    """A text part's content with the wire's CRLF line ends as newlines."""
    assert part is not None
    text: str = part.get_content()
    return text.replace("\r\n", "\n")


def test_mail_subject_headers_and_bodies() -> None:
    now = datetime(2025, 11, 26, 9, 40, 5, tzinfo=UTC)
    raw = mail_message(OPENED, MAIL, "1764150000000-0", now).as_bytes()
    head = raw.split(b"\r\n\r\n", 1)[0].decode("ascii")  # headers are 7-bit: RFC 2047 words
    assert re.search(r"^Subject: =\?utf-8\?[bq]\?", head, flags=re.M | re.I)
    msg = parsed(mail_message(OPENED, MAIL, "1764150000000-0", now))
    assert msg["Subject"] == "【视频监控】告警 · 离线：梅里镇水厂 1 号（公安）"
    assert msg["From"] == "视频监控告警 <videohub@example.org>"
    assert msg["To"] == "ops@example.org, duty@example.org"
    assert msg["Date"] == "Wed, 26 Nov 2025 17:40:05 +0800"
    assert msg["Message-ID"] == "<1764150000000-0.ops_mail@example.org>"
    assert msg["Auto-Submitted"] == "auto-generated"
    assert (msg["X-Videohub-Delivery"], msg["X-Videohub-Event"]) == ("1764150000000-0", "opened")
    assert msg.get_content_type() == "multipart/alternative"
    text_part = msg.get_body(("plain",))
    assert text_part is not None and text_part.get_content_charset() == "utf-8"
    assert content(text_part) == mail_text(OPENED)
    assert mail_text(OPENED) == (
        "告警 · 离线\n"
        "设备：梅里镇水厂 1 号（ga-0012）\n"
        "业务线：公安\n"
        "区域：梅里镇\n"
        "原因：连接被拒绝、码流中断\n"
        "发生时间：2025-11-26 17:40:00（北京时间）\n"
        "运维监测：https://vh.example.org/health\n"
        "\n"
        "—— English ——\n"
        "Alert · Offline\n"
        "Camera: 梅里镇水厂 1 号 (ga-0012)\n"
        "Line: Public Security\n"
        "Area: 梅里镇\n"
        "Reasons: Connection refused, Stream stalled\n"
        "Opened: 2025-11-26 17:40:00 (China time, UTC+8)\n"
        "Health page: https://vh.example.org/health\n"
    )
    html = content(msg.get_body(("html",)))
    assert "<h2>告警 · 离线</h2>" in html and "<h2>Alert · Offline</h2>" in html
    assert '<td><a href="https://vh.example.org/health">https://vh.example.org/health</a></td>' in html
    assert html.index("告警 · 离线") < html.index("Alert · Offline")


def test_mail_of_an_acknowledged_alert_and_without_html() -> None:
    msg = parsed(mail_message(ACKED, MAIL.model_copy(update={"html": False}), "1-0", datetime.now(UTC)))
    assert msg.get_content_type() == "text/plain"
    text = content(msg)
    assert "确认：2025-11-26 17:45:30，wang_li\n备注：已派人去现场\n" in text
    assert "Acknowledged: 2025-11-26 17:45:30, wang_li\nNote: 已派人去现场\n" in text
    assert mail_subject(RESOLVED) == "【视频监控】已恢复 · 离线：梅里镇水厂 1 号（公安）"


def test_a_camera_name_cannot_add_mail_headers_or_html() -> None:
    """CR LF in a camera name must not end the Subject and start a Bcc; HTML in it must stay text."""
    name = "水厂\r\nBcc: thief@evil.example\r\n\r\n<img src=x><script>alert(1)</script>"
    facts = replace(OPENED, camera_name=name, area="a\nb")
    raw = mail_message(facts, MAIL, "1-0", datetime.now(UTC)).as_bytes()
    msg = parsed(mail_message(facts, MAIL, "1-0", datetime.now(UTC)))
    assert msg["Bcc"] is None and b"\r\nBcc:" not in raw
    assert msg["Subject"].startswith("【视频监控】告警 · 离线：水厂 Bcc: thief@evil.example <img")
    html = content(msg.get_body(("html",)))
    assert "<img" not in html and "<script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "区域：a b\n" in content(msg.get_body(("plain",)))


def test_every_event_and_kind_has_words() -> None:
    assert set(strings.EVENTS) == set(get_args(EventType))
    assert set(strings.KINDS) == {"offline", "degraded", "flapping"}
