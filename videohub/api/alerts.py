"""Alerts API: list (everyone sees them; a line admin only its line's), acknowledge and resolve
(maintenance and admin)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Query

from videohub.alerts.models import AckRequest, Alert, AlertPage, AlertState, ResolveRequest
from videohub.alerts.service import AlertService
from videohub.api.deps import CurrentUser, ServicesDep
from videohub.errors import NotFound, Unavailable
from videohub.models import User
from videohub.policy import can_see_line, check_role, visible_lines
from videohub.services import Services

router = APIRouter(tags=["alerts"])

ACTORS = ("admin", "maintenance")


def service_of(svc: Services) -> AlertService:
    alerts = svc.alerts
    if not isinstance(alerts, AlertService):
        raise Unavailable("alerts are not running")
    return alerts


async def _visible(alerts: AlertService, alert_id: str, user: User) -> Alert:
    alert = await alerts.store.require(alert_id)
    if not can_see_line(user, alert.line):
        raise NotFound(f"alert {alert_id} not found")
    return alert


@router.get("/api/alerts", response_model=AlertPage)
async def list_alerts(
    user: CurrentUser,
    svc: ServicesDep,
    state: Literal["open", "acknowledged", "resolved", "active"] | None = None,
    line: str | None = None,
    camera: str | None = None,
    kind: Annotated[str | None, Query(max_length=32)] = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> AlertPage:
    """Newest first. ``state=active`` means open or acknowledged."""
    alerts = service_of(svc)
    allowed = visible_lines(user)
    lines: list[str] | None = None if allowed is None else sorted(allowed)
    if line is not None:
        lines = [line] if lines is None or line in lines else []
    if lines == []:
        return AlertPage(items=[], total=0)
    wanted: AlertState | None = None
    if state is not None and state != "active":
        wanted = state
    items = await alerts.store.query(
        state=wanted,
        lines=lines,
        camera=camera,
        kind=kind,
        since=since.timestamp() if since else None,
        until=until.timestamp() if until else None,
        limit=limit,
    )
    if state == "active":
        items = [a for a in items if a.active]
    return AlertPage(items=items, total=len(items))


@router.post("/api/alerts/{alert_id}/ack", response_model=Alert)
async def acknowledge_alert(
    alert_id: str, user: CurrentUser, svc: ServicesDep, body: AckRequest | None = None
) -> Alert:
    alerts = service_of(svc)
    before = await _visible(alerts, alert_id, user)
    check_role(user, *ACTORS)
    after = await alerts.acknowledge(alert_id, user.username, body.note if body else None)
    await svc.audit.record(
        user.username, "alert.ack", alert_id, before.model_dump(mode="json"), after.model_dump(mode="json")
    )
    return after


@router.post("/api/alerts/{alert_id}/resolve", response_model=Alert)
async def resolve_alert(
    alert_id: str, user: CurrentUser, svc: ServicesDep, body: ResolveRequest | None = None
) -> Alert:
    alerts = service_of(svc)
    before = await _visible(alerts, alert_id, user)
    check_role(user, *ACTORS)
    after = await alerts.resolve(alert_id, user.username, body.note if body else None)
    await svc.audit.record(
        user.username,
        "alert.resolve",
        alert_id,
        before.model_dump(mode="json"),
        after.model_dump(mode="json"),
    )
    return after
