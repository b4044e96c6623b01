"""Settings of the alert channels beside the signed webhook: WeCom and DingTalk group robots, and mail.

Each channel has a ``name`` (a slug, unique among all channels and webhooks: it names the channel's
Redis consumer group and dead-letter stream, the health page shows it), a ``lines`` filter like the
webhooks', and takes its secrets from environment variables named here (``key_env``, ``token_env``,
``secret_env``, ``password_env``): the configuration file holds no secret. A variable that is not set
is an error at start (and in ``videohub validate-config``), not at the first alert.
"""

from __future__ import annotations

import os
import re
from email.headerregistry import Address
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from videohub.settings.base import SLUG, Section

_ENV = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")
_HOST = re.compile(r"^[A-Za-z0-9.:\[\]-]{1,253}$")
_MOBILE = re.compile(r"^\+?[0-9-]{5,20}$")

WECOM_URL = "https://qyapi.weixin.qq.com/cgi-bin/webhook/send"
DINGTALK_URL = "https://oapi.dingtalk.com/robot/send"


def _slug(value: str) -> str:
    if not SLUG.match(value):
        raise ValueError("must be a lowercase slug: letters, digits and _ (2-32 chars)")
    return value


def _env_name(value: str) -> str:
    if not _ENV.match(value):
        raise ValueError("must be an environment variable name (letters, digits and _)")
    if not os.environ.get(value):
        raise ValueError(f"environment variable {value} is not set or empty")
    return value


def _base_url(value: str) -> str:
    """An http(s) endpoint without userinfo, query or fragment: the secret query is added per request."""
    if any(ord(c) < 0x21 or ord(c) == 0x7F for c in value) or not value.isascii():
        raise ValueError("must be a plain ASCII URL without spaces or control characters")
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("must be an http:// or https:// URL with a host")
    if parts.username is not None or parts.password is not None:
        raise ValueError("must not carry a user or password")
    if parts.query or parts.fragment or "?" in value or "#" in value:
        raise ValueError("must not carry a query or fragment (the key or token comes from *_env)")
    return f"{parts.scheme}://{parts.netloc.lower()}{parts.path}"


Slug = Annotated[str, AfterValidator(_slug)]
EnvName = Annotated[str, AfterValidator(_env_name)]
BaseUrl = Annotated[str, Field(min_length=8, max_length=512), AfterValidator(_base_url)]
Lines = Annotated[
    list[str], Field(max_length=100, description="Lines whose alerts are sent; empty means all lines.")
]
EventName = Literal["opened", "updated", "acknowledged", "resolved"]


def _events(value: list[EventName]) -> list[EventName]:
    if not value:
        raise ValueError("name at least one event")
    return sorted(set(value), key=["opened", "updated", "acknowledged", "resolved"].index)


Events = Annotated[list[EventName], Field(max_length=4), AfterValidator(_events)]
EVENTS_DESCRIPTION = (
    "Events sent. 'updated' (an open alert's reasons changed) is left out by default: a group chat would "
    "get a message per change."
)


def _default_events() -> list[EventName]:
    return ["opened", "acknowledged", "resolved"]


def env_secret(name: str) -> str:
    """The value of a secret's environment variable (checked to be set when the settings loaded)."""
    value = os.environ.get(name)
    if not value:
        raise RuntimeError(f"environment variable {name} is not set or empty")
    return value


class WeComSettings(Section):
    """A WeCom (企业微信) group robot: markdown messages POSTed to ``<base_url>?key=<key>``."""

    name: Slug = Field(description="Stable slug; names the consumer group and the dead-letter stream.")
    key_env: EnvName = Field(description="Environment variable holding the robot's webhook key.")
    base_url: BaseUrl = Field(
        WECOM_URL, description="The robot endpoint without its query (tests: a double)."
    )
    lines: Lines = Field(default_factory=list)
    events: Events = Field(default_factory=_default_events, description=EVENTS_DESCRIPTION)
    max_per_minute: int = Field(
        20, ge=1, le=600, description="Messages sent per minute at most (WeCom allows a robot 20)."
    )


class DingTalkSettings(Section):
    """A DingTalk (钉钉) custom group robot with the 加签 security setting: markdown messages POSTed to
    ``<base_url>?access_token=<token>&timestamp=<ms>&sign=<HMAC-SHA256 of "timestamp\\nsecret">``."""

    name: Slug = Field(description="Stable slug; names the consumer group and the dead-letter stream.")
    token_env: EnvName = Field(description="Environment variable holding the robot's access_token.")
    secret_env: EnvName = Field(description="Environment variable holding the robot's 加签 secret (SEC…).")
    base_url: BaseUrl = Field(
        DINGTALK_URL, description="The robot endpoint without its query (tests: a double)."
    )
    lines: Lines = Field(default_factory=list)
    events: Events = Field(default_factory=_default_events, description=EVENTS_DESCRIPTION)
    at_mobiles: list[str] = Field(
        default_factory=list, max_length=20, description="Mobile numbers of group members to @ in each alert."
    )
    at_all: bool = Field(False, description="@ everyone in the group with each alert.")
    max_per_minute: int = Field(
        20, ge=1, le=600, description="Messages sent per minute at most (DingTalk allows a robot 20)."
    )

    @field_validator("at_mobiles")
    @classmethod
    def _mobiles(cls, value: list[str]) -> list[str]:
        for mobile in value:
            if not _MOBILE.match(mobile):
                raise ValueError(f"{mobile!r} is not a mobile number (digits, optional + and -)")
        return value


def _address(value: str) -> str:
    value = value.strip()
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in value) or any(c in value for c in ' <>,;"()'):
        raise ValueError("must be a bare address such as ops@example.org")
    local, at, domain = value.rpartition("@")
    if not at or not local or not domain or "." not in domain.strip("."):
        raise ValueError("must be an address such as ops@example.org")
    try:
        Address(addr_spec=f"{local}@{domain.lower()}")
    except (ValueError, IndexError) as exc:
        raise ValueError(f"not a mail address: {exc}") from exc
    return f"{local}@{domain.lower()}"


MailAddress = Annotated[str, Field(min_length=3, max_length=254), AfterValidator(_address)]


class MailSettings(Section):
    """Plain SMTP mail: one message per alert event to ``to``, subject and body in Chinese first."""

    name: Slug = Field(description="Stable slug; names the consumer group and the dead-letter stream.")
    host: str = Field(min_length=1, max_length=253, description="SMTP server (name or address).")
    port: int = Field(587, ge=1, le=65535, description="SMTP port (587 for starttls, 465 for ssl, 25).")
    security: Literal["starttls", "ssl", "none"] = Field(
        "starttls",
        description="starttls: plain connection upgraded to TLS (required, never skipped); ssl: TLS from "
        "the first byte; none: no TLS (only without a login). The server's certificate is verified.",
    )
    ca_file: Path | None = Field(
        None, description="PEM file of the CA that signed the server's certificate (default: the system's)."
    )
    username: str | None = Field(
        None, min_length=1, max_length=254, description="Login, if the server needs one."
    )
    password_env: EnvName | None = Field(
        None, description="Environment variable holding the login's password."
    )
    from_addr: MailAddress = Field(description="Sender address, e.g. videohub@example.org.")
    from_name: str = Field(
        "视频监控告警", min_length=1, max_length=64, description="Sender display name (Chinese allowed)."
    )
    to: list[MailAddress] = Field(min_length=1, max_length=50, description="Recipient addresses.")
    lines: Lines = Field(default_factory=list)
    events: Events = Field(default_factory=_default_events, description=EVENTS_DESCRIPTION)
    html: bool = Field(True, description="Add an HTML part beside the plain text.")
    timeout_seconds: float = Field(
        15.0, ge=1, le=120, description="Timeout of each step of one SMTP conversation."
    )

    @field_validator("host")
    @classmethod
    def _host(cls, value: str) -> str:
        if not _HOST.match(value):
            raise ValueError("must be a host name or an IP address")
        return value.lower()

    @field_validator("username", "from_name")
    @classmethod
    def _no_controls(cls, value: str | None) -> str | None:
        if value is not None and any(ord(c) < 0x20 or ord(c) == 0x7F for c in value):
            raise ValueError("contains a control character")
        return value

    @field_validator("ca_file")
    @classmethod
    def _ca_file(cls, value: Path | None) -> Path | None:
        if value is not None and not value.is_file():
            raise ValueError(f"{value} is not a file")
        return value

    @model_validator(mode="after")
    def _login(self) -> MailSettings:
        if (self.username is None) != (self.password_env is None):
            raise ValueError("give both username and password_env, or neither")
        if self.username is not None and self.security == "none":
            raise ValueError("a login needs security starttls or ssl (the password would cross in clear)")
        return self


class ChannelSettings(Section):
    """The alert channels besides the webhooks; every one gets each alert event of its lines."""

    wecom: list[WeComSettings] = Field(default_factory=list, max_length=50, description="WeCom group robots.")
    dingtalk: list[DingTalkSettings] = Field(
        default_factory=list, max_length=50, description="DingTalk group robots."
    )
    mail: list[MailSettings] = Field(default_factory=list, max_length=50, description="SMTP mail channels.")

    def names(self) -> list[str]:
        return [c.name for group in (self.wecom, self.dingtalk, self.mail) for c in group]


def _unique_with_webhooks(value: ChannelSettings, info: ValidationInfo) -> ChannelSettings:
    """Channel names are unique among themselves and the webhooks': one name, one dead-letter stream."""
    names = value.names() + [hook.name for hook in info.data.get("webhooks", [])]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValueError(f"channel and webhook names must be unique: {', '.join(duplicates)}")
    return value


Channels = Annotated[ChannelSettings, AfterValidator(_unique_with_webhooks)]
"""The type of ``AlertSettings.channels`` (declared after ``webhooks``, whose names it checks)."""
