"""Settings of the alert channels: defaults, secrets only from named environment variables, and
errors that name the key (``videohub validate-config`` prints them)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from videohub.settings import ConfigError, load_settings
from videohub.settings.channels import DINGTALK_URL, WECOM_URL


@pytest.fixture(autouse=True)
def secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("T_WECOM_KEY", "k")
    monkeypatch.setenv("T_DING_TOKEN", "t")
    monkeypatch.setenv("T_DING_SECRET", "s")
    monkeypatch.setenv("T_MAIL_PASSWORD", "p")
    monkeypatch.delenv("T_UNSET", raising=False)


def problems(tmp_path: Path, alerts: object, server: object | None = None) -> dict[str, str]:
    path = tmp_path / "c.yaml"
    data: dict[str, object] = {"alerts": alerts}
    if server is not None:
        data["server"] = server
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    try:
        load_settings(
            path, lines=[{"id": "public_security", "name_zh": "公安", "name_en": "PS", "color": "#112233"}]
        )
    except ConfigError as exc:
        return dict(exc.problems)
    return {}


LINES = [{"id": "public_security", "name_zh": "公安", "name_en": "PS", "color": "#112233"}]
WECOM = {"name": "ga_wecom", "key_env": "T_WECOM_KEY"}
DING = {"name": "aj_ding", "token_env": "T_DING_TOKEN", "secret_env": "T_DING_SECRET"}
MAIL = {
    "name": "ops_mail",
    "host": "SMTP.Example.org",
    "from_addr": "vh@Example.ORG",
    "to": ["ops@example.org"],
}


def test_channels_with_their_defaults(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(
        yaml.safe_dump({"alerts": {"channels": {"wecom": [WECOM], "dingtalk": [DING], "mail": [MAIL]}}})
    )
    channels = load_settings(path, lines=LINES).alerts.channels
    (wecom,), (ding,), (mail,) = channels.wecom, channels.dingtalk, channels.mail
    assert (wecom.base_url, wecom.max_per_minute, wecom.lines) == (WECOM_URL, 20, [])
    assert wecom.events == ding.events == mail.events == ["opened", "acknowledged", "resolved"]
    assert (ding.base_url, ding.at_mobiles, ding.at_all) == (DINGTALK_URL, [], False)
    assert (mail.host, mail.port, mail.security, mail.from_addr, mail.html) == (
        "smtp.example.org",
        587,
        "starttls",
        "vh@example.org",
        True,
    )
    assert channels.names() == ["ga_wecom", "aj_ding", "ops_mail"]


def test_channels_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VIDEOHUB_ALERTS__CHANNELS__WECOM", json.dumps([WECOM]))
    monkeypatch.setenv("VIDEOHUB_ALERTS__CHANNELS__MAIL", json.dumps([MAIL]))
    monkeypatch.setenv("VIDEOHUB_SERVER__PUBLIC_URL", "https://VideoHub.example.org/vh/")
    settings = load_settings()
    assert [c.name for c in settings.alerts.channels.wecom] == ["ga_wecom"]
    assert [c.name for c in settings.alerts.channels.mail] == ["ops_mail"]
    assert settings.server.public_url == "https://videohub.example.org/vh"


@pytest.mark.parametrize(
    ("alerts", "key", "reason"),
    [
        (
            {"channels": {"wecom": [{**WECOM, "key_env": "T_UNSET"}]}},
            "alerts.channels.wecom.0.key_env",
            "T_UNSET is not set",
        ),
        (
            {
                "channels": {
                    "wecom": [
                        {**WECOM, "base_url": "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=abc"}
                    ]
                }
            },
            "alerts.channels.wecom.0.base_url",
            "must not carry a query",
        ),
        (
            {"channels": {"dingtalk": [{**DING, "base_url": "ftp://x.example/robot"}]}},
            "alerts.channels.dingtalk.0.base_url",
            "http",
        ),
        (
            {"channels": {"dingtalk": [{**DING, "at_mobiles": ["138 0000"]}]}},
            "alerts.channels.dingtalk.0.at_mobiles",
            "mobile",
        ),
        ({"channels": {"wecom": [{**WECOM, "name": "Bad Name"}]}}, "alerts.channels.wecom.0.name", "slug"),
        (
            {
                "channels": {
                    "mail": [{**MAIL, "security": "none", "username": "u", "password_env": "T_MAIL_PASSWORD"}]
                }
            },
            "alerts.channels.mail.0",
            "in clear",
        ),
        (
            {"channels": {"mail": [{**MAIL, "username": "u"}]}},
            "alerts.channels.mail.0",
            "username and password_env",
        ),
        (
            {"channels": {"mail": [{**MAIL, "to": ["ops@example.org\r\nBcc: x@evil.example"]}]}},
            "alerts.channels.mail.0.to.0",
            "bare address",
        ),
        ({"channels": {"mail": [{**MAIL, "to": []}]}}, "alerts.channels.mail.0.to", "at least 1"),
        (
            {"channels": {"mail": [{**MAIL, "ca_file": "/nonexistent/ca.pem"}]}},
            "alerts.channels.mail.0.ca_file",
            "not a file",
        ),
        (
            {"channels": {"wecom": [WECOM], "mail": [{**MAIL, "name": "ga_wecom"}]}},
            "alerts.channels",
            "unique: ga_wecom",
        ),
        (
            {
                "webhooks": [{"name": "ops", "url": "https://ops.example/hook"}],
                "channels": {"wecom": [{**WECOM, "name": "ops"}]},
            },
            "alerts.channels",
            "unique: ops",
        ),
        ({"channels": {"slack": []}}, "alerts.channels.slack", "unknown key"),
        (
            {"channels": {"wecom": [{**WECOM, "events": []}]}},
            "alerts.channels.wecom.0.events",
            "at least one event",
        ),
        (
            {"channels": {"wecom": [{**WECOM, "events": ["closed"]}]}},
            "alerts.channels.wecom.0.events.0",
            "opened",
        ),
    ],
)
def test_bad_channel_settings_name_the_key(tmp_path: Path, alerts: object, key: str, reason: str) -> None:
    found = problems(tmp_path, alerts)
    assert key in found, found
    assert reason in found[key]


@pytest.mark.parametrize(
    "url",
    [
        "https://user:pw@vh.example.org",
        "https://vh.example.org/?a=1",
        "https://vh.example.org/#x",
        "javascript:alert(1)",
        "https://vh.example.org/a)b",
    ],
)
def test_a_public_url_is_a_plain_http_address(tmp_path: Path, url: str) -> None:
    assert "server.public_url" in problems(tmp_path, {}, {"public_url": url})
