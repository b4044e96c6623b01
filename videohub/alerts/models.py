"""The alert record and the events its lifecycle emits (open → acknowledged → resolved)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

AlertState = Literal["open", "acknowledged", "resolved"]
ALERT_STATES: tuple[AlertState, ...] = ("open", "acknowledged", "resolved")
EventType = Literal["opened", "updated", "acknowledged", "resolved"]


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
