"""The alert record and the events its lifecycle emits (open → acknowledged → resolved)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

AlertState = Literal["open", "acknowledged", "resolved"]
ALERT_STATES: tuple[AlertState, ...] = ("open", "acknowledged", "resolved")
EventType = Literal["opened", "updated", "acknowledged", "resolved"]
ChannelKind = Literal["webhook", "wecom", "dingtalk", "mail"]


class Alert(BaseModel):
    """One alert about one camera. At most one is unresolved per (camera, kind)."""

    id: str
    camera: str
    line: str
    kind: str = Field(description="offline, degraded or flapping.")
    reasons: list[str] = Field(
        default_factory=list, description="e.g. refused, stalled, black, frozen, low_fps."
    )
    state: AlertState = "open"
    opened_at: datetime
    updated_at: datetime
    acked_by: str | None = None
    acked_at: datetime | None = None
    ack_note: str | None = None
    resolved_by: str | None = Field(None, description="A username, or 'auto' when the camera recovered.")
    resolved_at: datetime | None = None
    resolve_note: str | None = None

    @property
    def active(self) -> bool:
        return self.state != "resolved"


class AlertEvent(BaseModel):
    """What integrators read from the Redis stream, webhooks receive and the UI is pushed."""

    event: EventType
    alert: Alert

    def body(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


class AckRequest(BaseModel):
    note: str | None = Field(None, max_length=500, description="What is being done about it.")


class ResolveRequest(BaseModel):
    note: str | None = Field(None, max_length=500, description="How it was fixed.")


class AlertPage(BaseModel):
    items: list[Alert]
    total: int = Field(description="Matching alerts returned (newest first, up to limit).")


class ParkedEvent(BaseModel):
    """An alert event a channel (webhook, robot, mail) kept refusing, parked in its dead-letter stream."""

    id: str = Field(description="Entry id in the dead-letter stream (changes when a re-send fails).")
    hook: str = Field(description="Name of the webhook or channel.")
    channel: ChannelKind = Field("webhook", description="What kind of channel it is.")
    delivery: str = Field(description="X-Videohub-Delivery of the event: what receivers de-duplicate on.")
    event: EventType
    alert: Alert
    attempts: int = Field(description="Delivery attempts so far, re-sends included.")
    last_error: str = Field(
        description="e.g. 'HTTP 500', 'ConnectError', 'errcode 93000: …', 'SMTP 550: …'; never a URL "
        "or a secret."
    )
    last_status: int | None = Field(None, description="HTTP status of the last answer, if there was one.")
    parked_at: datetime


class ParkedPage(BaseModel):
    items: list[ParkedEvent] = Field(description="Newest first, up to limit.")
    counts: dict[str, int] = Field(description="Parked events per webhook (all of them, not only listed).")
    channels: dict[str, ChannelKind] = Field(
        default_factory=dict, description="The kind of each webhook or channel in counts."
    )


class ResendResult(BaseModel):
    resent: int = Field(description="Events the channel accepted and that left the dead-letter stream.")
    failed: ParkedEvent | None = Field(
        None, description="The event the webhook refused again (still parked); a re-send-all stops there."
    )
    remaining: int = Field(description="Events still parked for this webhook.")
