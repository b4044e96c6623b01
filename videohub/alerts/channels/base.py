"""What every alert channel does: render an event into its payload, send it once, say how it went.

The delivery loop (``videohub.alerts.delivery``) is the same for every channel: a Redis consumer
group per channel, retries with capped backoff, parking in the channel's dead-letter stream. A
channel only knows its own wire:

- ``render(delivery, event)`` builds the payload once per event (JSON for the webhook and the
  robots, a whole MIME message for mail); it is stored when the event is parked, so a re-send is
  the same bytes;
- ``send(delivery, event, payload)`` makes one attempt: ``None`` when the receiver took it, else a
  ``Failure`` whose ``final`` says that a retry cannot change the answer (park at once);
- ``clean(text)`` makes any error text safe to store, log and show: no URL (robot URLs carry their
  key or token), no secret value, no control characters.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Collection, Sequence
from typing import ClassVar

from videohub.alerts.deadletter import Failure
from videohub.alerts.models import AlertEvent, ChannelKind, EventType
from videohub.alerts.pace import Pace

CHANNEL_KINDS: tuple[ChannelKind, ...] = ("webhook", "wecom", "dingtalk", "mail")

_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://\S*")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")


class Channel(ABC):
    """One configured destination of alert events; owned by its ``ChannelDelivery``."""

    kind: ClassVar[ChannelKind]

    def __init__(
        self,
        name: str,
        lines: Sequence[str],
        *,
        events: Collection[EventType] | None = None,
        secrets: Sequence[str] = (),
        pace: Pace | None = None,
    ) -> None:
        self.name = name
        self.lines = list(lines)
        self.events = None if events is None else frozenset(events)
        """The events sent (None: all of them)."""
        self.pace = pace
        """Sends per minute this channel allows, if it has a limit (the robots do)."""
        self._secrets = sorted((s for s in secrets if s), key=len, reverse=True)

    @property
    def group(self) -> str:
        """The channel's consumer group on the alert stream (``webhook:<name>`` for webhooks, as before)."""
        return f"{self.kind}:{self.name}"

    def wants(self, event: AlertEvent) -> bool:
        if self.events is not None and event.event not in self.events:
            return False
        return not self.lines or event.alert.line in self.lines

    @abstractmethod
    async def render(self, delivery: str, event: AlertEvent) -> bytes:
        """The payload of ``event``; ``delivery`` is its id in the alert stream."""

    @abstractmethod
    async def send(self, delivery: str, event: EventType, payload: bytes) -> Failure | None:
        """One attempt; None when the receiver took it."""

    def clean(self, text: str, limit: int = 200) -> str:
        """Error text safe for logs, the parked-events API and the audit trail."""
        for secret in self._secrets:
            text = text.replace(secret, "***")
        text = _CONTROL.sub(" ", _URL.sub("<url>", text)).strip()
        return text[:limit]

    def failure(self, exc: BaseException) -> str:
        """A transport error as safe text: its type and cleaned message."""
        message = self.clean(str(exc), 160)
        return f"{type(exc).__name__}: {message}" if message else type(exc).__name__

    async def aclose(self) -> None:  # noqa: B027 - most channels hold nothing of their own
        """Release what the channel holds (safe to call twice)."""
