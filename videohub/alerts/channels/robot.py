"""What the WeCom and DingTalk group robots share: a JSON POST whose answer is ``{"errcode": …}``.

A robot takes a message when it answers HTTP 200 *and* ``errcode`` 0. An errcode in the robot's
``RETRY_CODES`` (busy, sending too fast) is tried again later; any other errcode (bad key, bad sign,
keyword or IP check failed, bad content) cannot change by retrying and parks the event at once. An
HTTP error is judged as the webhook's (``alerts.webhook_park_statuses``). The robot's URL carries its
key or token: it is built per attempt, never stored, logged or shown.
"""

from __future__ import annotations

import json
from abc import abstractmethod
from collections.abc import Collection, Sequence
from typing import Any, ClassVar

import httpx

from videohub.alerts.channels import strings
from videohub.alerts.channels.base import Channel
from videohub.alerts.channels.message import Directory, Facts, describe, inert_markdown, local
from videohub.alerts.channels.webhook import http_failure
from videohub.alerts.deadletter import Failure
from videohub.alerts.models import AlertEvent, EventType
from videohub.alerts.pace import Pace

NOTE_CHARS = 200
"""Notes are cut to this many characters in a robot message (a robot message is read on a phone)."""


def quote_lines(f: Facts) -> list[str]:
    """The facts below a robot message's headline, as markdown quotes (zh-CN); user text is inert."""
    zh = 0
    label = {key: value[zh] for key, value in strings.LABELS.items()}
    text = inert_markdown
    lines = [f"> {label['line']}：{text(f.line[zh])}"]
    if f.area:
        lines.append(f"> {label['area']}：{text(f.area, 64)}")
    if f.reasons:
        lines.append(f"> {label['reasons']}：{'、'.join(text(r) for r in f.reason_words(zh))}")
    lines.append(f"> {label['opened']}：{local(f.opened_at)}")
    if f.acked_at is not None:
        line = f"> {label['acknowledged']}：{local(f.acked_at)}，{text(f.acked_by or '')}"
        if f.ack_note:
            line += f"（{label['note']}：{text(f.ack_note, NOTE_CHARS)}）"
        lines.append(line)
    if f.resolved_at is not None:
        who = text(f.resolved_by or "")
        by = label["by_itself"] if f.resolved_by == "auto" else label["by"].format(who=who)
        line = f"> {label['resolved']}：{local(f.resolved_at)}，{by}"
        if f.resolve_note:
            line += f"（{label['note']}：{text(f.resolve_note, NOTE_CHARS)}）"
        lines.append(line)
    if f.link:
        lines.append(f"[{label['link']}]({f.link})")
    return lines


def fit(lines: Sequence[str], limit: int, keep: int = 2) -> str:
    """``lines`` joined by newlines within ``limit`` UTF-8 bytes: lines after the first ``keep`` are
    dropped from the end until it fits (names and notes are cut before this: it is a last guard)."""
    kept = list(lines)
    while len(kept) > keep and len("\n".join(kept).encode()) > limit:
        kept.pop()
    text = "\n".join(kept)
    while len(text.encode()) > limit:
        text = text[:-1]
    return text


class RobotChannel(Channel):
    """A group robot; subclasses give its URL, its message body and its retryable errcodes."""

    RETRY_CODES: ClassVar[frozenset[int]]

    def __init__(
        self,
        name: str,
        lines: Sequence[str],
        client: httpx.AsyncClient,
        directory: Directory,
        *,
        events: Collection[EventType],
        timeout: float,
        park_statuses: Collection[int],
        secrets: Sequence[str],
        max_per_minute: int,
    ) -> None:
        super().__init__(name, lines, events=events, secrets=secrets, pace=Pace(max_per_minute))
        self.client = client
        self.directory = directory
        self.timeout = timeout
        self.park_statuses = park_statuses

    @abstractmethod
    def url(self) -> str:
        """The endpoint with its secret query, for one attempt."""

    @abstractmethod
    def body(self, facts: Facts) -> dict[str, Any]:
        """The robot's JSON message."""

    async def render(self, delivery: str, event: AlertEvent) -> bytes:
        facts = await describe(event, self.directory)
        return json.dumps(self.body(facts), ensure_ascii=False).encode()

    async def send(self, delivery: str, event: EventType, payload: bytes) -> Failure | None:
        headers = {"Content-Type": "application/json; charset=utf-8"}
        try:
            response = await self.client.post(
                self.url(), content=payload, headers=headers, timeout=self.timeout
            )
        except httpx.HTTPError as exc:
            return Failure(self.failure(exc))
        if response.status_code != 200:
            return http_failure(response, self.park_statuses)
        try:
            answer = response.json()
            code = int(answer["errcode"])
        except (ValueError, KeyError, TypeError):
            return Failure("HTTP 200 without an errcode", 200)
        if code == 0:
            return None
        message = self.clean(str(answer.get("errmsg", "")), 120)
        error = f"errcode {code}: {message}" if message else f"errcode {code}"
        return Failure(error, 200, final=code not in self.RETRY_CODES)
