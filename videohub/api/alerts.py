"""Alerts API: list (everyone sees them; a line admin only its line's), acknowledge and resolve
(maintenance and admin); the parked events of webhooks and channels (WeCom, DingTalk, mail): list,
re-send, delete (maintenance and admin)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query

from videohub.alerts.deadletter import ENTRY_ID
from videohub.alerts.models import (
    AckRequest,
    Alert,
    AlertPage,
    AlertState,
    ParkedEvent,
    ParkedPage,
    ResendResult,
    ResolveRequest,
)
from videohub.alerts.service import AlertService
from videohub.api.deps import AlertsDep, CurrentUser, ServicesDep
from videohub.errors import InvalidField, NotFound
from videohub.models import User
from videohub.policy import ALERT_ACTORS, can_see_line, check_role, visible_lines

router = APIRouter(tags=["alerts"])

ACTORS = ALERT_ACTORS


async def _visible(alerts: AlertService, alert_id: str, user: User) -> Alert:
    alert = await alerts.store.require(alert_id)
    if not can_see_line(user, alert.line):
        raise NotFound(f"alert {alert_id} not found")
    return alert


@router.get("/api/alerts", response_model=AlertPage)
async def list_alerts(
    user: CurrentUser,
    svc: ServicesDep,
    alerts: AlertsDep,
    state: Literal["open", "acknowledged", "resolved", "active"] | None = None,
    line: str | None = None,
    camera: str | None = None,
    kind: Annotated[str | None, Query(max_length=32)] = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> AlertPage:
    """Newest first. ``state=active`` means open or acknowledged."""
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
    alert_id: str, user: CurrentUser, svc: ServicesDep, alerts: AlertsDep, body: AckRequest | None = None
) -> Alert:
    before = await _visible(alerts, alert_id, user)
    check_role(user, *ACTORS)
    after = await alerts.acknowledge(alert_id, user.username, body.note if body else None)
    await svc.audit.record(
        user.username, "alert.ack", alert_id, before.model_dump(mode="json"), after.model_dump(mode="json")
    )
    return after


@router.post("/api/alerts/{alert_id}/resolve", response_model=Alert)
async def resolve_alert(
    alert_id: str, user: CurrentUser, svc: ServicesDep, alerts: AlertsDep, body: ResolveRequest | None = None
) -> Alert:
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


# -- parked events of webhooks and channels (dead letters) ----------------------------------------

HookName = Annotated[str, Path(max_length=32, description="Name of a configured webhook or channel.")]
EntryId = Annotated[str, Path(max_length=41, description="Id of the parked event (a stream entry id).")]


def _entry_id(entry_id: str) -> str:
    if not ENTRY_ID.match(entry_id):
        raise InvalidField(("path", "entry_id"), "must be a stream entry id such as 1764150000000-0")
    return entry_id


def _action(alerts: AlertService, hook: str, verb: str) -> str:
    """The audit action: ``webhook.resend`` as before for webhooks, ``wecom.resend`` … for channels."""
    return f"{alerts.delivery(hook).channel.kind}.{verb}"


def _summary(parked: ParkedEvent) -> dict[str, object]:
    """What the audit log keeps of a parked event (the alert by id: its record is in the alert store)."""
    return {
        "hook": parked.hook,
        "channel": parked.channel,
        "delivery": parked.delivery,
        "event": parked.event,
        "alert": parked.alert.id,
        "camera": parked.alert.camera,
        "attempts": parked.attempts,
        "last_error": parked.last_error,
    }


@router.get("/api/alerts/dead", response_model=ParkedPage)
async def list_parked(
    user: CurrentUser,
    svc: ServicesDep,
    alerts: AlertsDep,
    hook: Annotated[str | None, Query(max_length=32)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> ParkedPage:
    """Events webhooks and channels kept refusing, newest first, with the count and kind of each."""
    check_role(user, *ACTORS)
    deliveries = [alerts.delivery(hook)] if hook is not None else alerts.deliveries
    items: list[ParkedEvent] = []
    for d in deliveries:
        items.extend(await alerts.dead.list(d.name, limit, d.channel.kind))
    items.sort(key=lambda p: p.parked_at, reverse=True)
    return ParkedPage(
        items=items[:limit],
        counts=await alerts.dead.counts(d.name for d in deliveries),
        channels={d.name: d.channel.kind for d in deliveries},
    )


@router.post("/api/alerts/dead/{hook}/resend-all", response_model=ResendResult)
async def resend_all_parked(
    hook: HookName, user: CurrentUser, svc: ServicesDep, alerts: AlertsDep
) -> ResendResult:
    """Send the channel's parked events again, oldest first, until it refuses one (at most 200 a call;
    a robot's, as many as its rate limit allows now)."""
    check_role(user, *ACTORS)
    before = await alerts.dead.count(alerts.delivery(hook).name)
    result = await alerts.resend_all(hook)
    await svc.audit.record(
        user.username,
        _action(alerts, hook, "resend_all"),
        hook,
        {"parked": before},
        {"resent": result.resent, "remaining": result.remaining, "failed": result.failed is not None},
    )
    return result


@router.post("/api/alerts/dead/{hook}/{entry_id}/resend", response_model=ResendResult)
async def resend_parked(
    hook: HookName, entry_id: EntryId, user: CurrentUser, svc: ServicesDep, alerts: AlertsDep
) -> ResendResult:
    """Send one parked event again now. ``resent`` 1: the channel took it; else ``failed`` is the event,
    still parked, with the new error."""
    check_role(user, *ACTORS)
    before = await alerts.parked(hook, _entry_id(entry_id))
    result = await alerts.resend(hook, entry_id)
    after = {"resent": result.resent} | ({"last_error": result.failed.last_error} if result.failed else {})
    await svc.audit.record(
        user.username, _action(alerts, hook, "resend"), f"{hook}/{entry_id}", _summary(before), after
    )
    return result


@router.delete("/api/alerts/dead/{hook}/{entry_id}", status_code=204)
async def delete_parked(
    hook: HookName, entry_id: EntryId, user: CurrentUser, svc: ServicesDep, alerts: AlertsDep
) -> None:
    """Drop one parked event (it is never sent again)."""
    check_role(user, *ACTORS)
    removed = await alerts.delete_parked(hook, _entry_id(entry_id))
    await svc.audit.record(
        user.username, _action(alerts, hook, "delete_parked"), f"{hook}/{entry_id}", _summary(removed), None
    )
