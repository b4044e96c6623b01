"""What an alert message says, whatever the channel: the facts of one event, looked up once.

An alert names its camera by id and its line by id. A message names them as people know them: the
camera's name and area from the registry, the line's Chinese and English names from the
configuration, the reasons in words (``strings``), times in China Standard Time, and a link to the
health page when ``server.public_url`` is set. Each channel's formatter (``wecom``, ``dingtalk``,
``mail``) turns these ``Facts`` into its own format.

Camera names, areas, user names and notes are typed by registry and maintenance users: every
formatter treats them as hostile (``plain`` and ``inert_markdown`` here, ``html.escape`` in mail).
"""

from __future__ import annotations

import logging
import unicodedata
from collections.abc import Awaitable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Protocol

from videohub.alerts.channels import strings
from videohub.alerts.models import AlertEvent, EventType
from videohub.models import Camera
from videohub.store import OUTAGE

if TYPE_CHECKING:
    from videohub.settings import Settings

log = logging.getLogger(__name__)

CHINA = timezone(timedelta(hours=8), "CST")
"""Asia/Shanghai: UTC+8 all year (no daylight saving since 1991), so no time zone database is needed."""


class CameraLookup(Protocol):
    """What a message needs of the registry (``videohub.registry.CameraRegistry`` is one)."""

    def get(self, camera_id: str) -> Awaitable[Camera | None]: ...


@dataclass(frozen=True)
class Directory:
    """Where messages look up what an alert names only by id."""

    cameras: CameraLookup | None = None
    lines: Mapping[str, tuple[str, str]] = field(default_factory=dict)
    """Line id → (Chinese name, English name)."""
    public_url: str | None = None

    @classmethod
    def from_settings(cls, settings: Settings, cameras: CameraLookup | None) -> Directory:
        return cls(
            cameras=cameras,
            lines={line.id: (line.name_zh, line.name_en) for line in settings.lines},
            public_url=settings.server.public_url,
        )


@dataclass(frozen=True)
class Facts:
    """One alert event in words. Text fields are as users typed them: formatters must escape them."""

    event: EventType
    kind: str
    camera_id: str
    camera_name: str | None
    """None when the camera is no longer registered."""
    area: str
    line: tuple[str, str]
    reasons: list[str]
    opened_at: datetime
    acked_by: str | None = None
    acked_at: datetime | None = None
    ack_note: str | None = None
    resolved_by: str | None = None
    resolved_at: datetime | None = None
    resolve_note: str | None = None
    link: str | None = None

    def title(self, lang: int) -> str:
        """e.g. 告警 · 离线, 已恢复 · 画面/码流异常."""
        return f"{strings.EVENTS[self.event][lang]} · {strings.kind(self.kind, lang)}"

    def reason_words(self, lang: int) -> list[str]:
        return [strings.reason(code, lang) for code in self.reasons]

    def name(self, lang: int) -> str:
        return self.camera_name if self.camera_name is not None else strings.LABELS["unknown_camera"][lang]


def local(moment: datetime) -> str:
    return moment.astimezone(CHINA).strftime("%Y-%m-%d %H:%M:%S")


async def describe(event: AlertEvent, directory: Directory) -> Facts:
    """The facts of ``event``; a registry outage propagates (the delivery tries again later)."""
    alert = event.alert
    camera: Camera | None = None
    if directory.cameras is not None:
        try:
            camera = await directory.cameras.get(alert.camera)
        except OUTAGE:
            raise
        except Exception as exc:  # an unreadable registry entry: the message names the id only
            log.warning("alerts: camera %s unreadable for a message (%s)", alert.camera, type(exc).__name__)
    line = directory.lines.get(alert.line, (alert.line, alert.line))
    return Facts(
        event=event.event,
        kind=alert.kind,
        camera_id=alert.camera,
        camera_name=camera.name if camera is not None else None,
        area=camera.area if camera is not None else "",
        line=line,
        reasons=list(alert.reasons),
        opened_at=alert.opened_at,
        acked_by=alert.acked_by,
        acked_at=alert.acked_at,
        ack_note=alert.ack_note,
        resolved_by=alert.resolved_by,
        resolved_at=alert.resolved_at,
        resolve_note=alert.resolve_note,
        link=f"{directory.public_url}/health" if directory.public_url else None,
    )


def plain(value: str, limit: int | None = None) -> str:
    """One line of plain text: control, format and line/paragraph separator characters become spaces
    (a camera name with CR LF must not start a mail header or a new markdown block; bidi controls
    must not reorder what a reader sees), runs of spaces collapse; cut to ``limit`` characters."""
    out = []
    for char in value:
        category = unicodedata.category(char)
        out.append(" " if category in ("Cc", "Cf", "Zl", "Zp") or char.isspace() else char)
    text = " ".join("".join(out).split())
    if limit is not None and len(text) > limit:
        text = text[: limit - 1].rstrip() + "…"
    return text


_INERT = str.maketrans(
    {
        "\\": "＼",
        "`": "｀",
        "*": "＊",
        "_": "＿",
        "~": "～",
        "#": "＃",
        "[": "［",
        "]": "］",
        "(": "（",
        ")": "）",
        "<": "＜",
        ">": "＞",
        "&": "＆",
        "!": "！",
        "|": "｜",
        "@": "＠",
        ":": "：",
        '"': "＂",
    }
)


def inert_markdown(value: str, limit: int | None = None) -> str:
    """User text for a robot's markdown, shown as typed and never as markup: one line (``plain``), and
    each ASCII character that markdown or the robots' HTML subset acts on (``* _ [ ] ( ) < > # ` ~ !
    | & @`` …) replaced by its full-width form, so no link, tag, heading, mention or emphasis can be
    made from a camera name; ``:`` too, so ``http://…`` is not turned into a link."""
    return plain(value, limit).translate(_INERT)
