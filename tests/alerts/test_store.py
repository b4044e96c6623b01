"""Alert lifecycle in a real Valkey: one unresolved alert per (camera, kind), ack, resolve, history."""

from __future__ import annotations

import asyncio

import pytest
import redis.asyncio as aioredis

from videohub.alerts.service import AlertService
from videohub.alerts.store import AlertStore
from videohub.errors import Conflict, NotFound


class Clock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


async def test_one_open_alert_per_camera_and_kind(redis: aioredis.Redis) -> None:
    store = AlertStore(redis)
    a = await store.open("cam1", "public_security", "offline", ["refused"])
    b = await store.open("cam1", "public_security", "offline", ["refused"])
    assert a.id == b.id
    c = await store.open("cam1", "public_security", "offline", ["timeout"])
    assert c.id == a.id and c.reasons == ["timeout"]
    d = await store.open("cam1", "public_security", "degraded", ["black"])
    assert d.id != a.id
    events = [(e.event, e.alert.kind) for _, e in await store.events_after()]
    assert events == [("opened", "offline"), ("updated", "offline"), ("opened", "degraded")]


async def test_ack_then_resolve_records_who_when_and_note(redis: aioredis.Redis) -> None:
    clock = Clock()
    store = AlertStore(redis, clock=clock)
    alert = await store.open("cam1", "work_safety", "offline", ["stalled"])
    clock.now += 60
    acked = await store.acknowledge(alert.id, "wang", "on my way")
    assert acked.state == "acknowledged" and acked.acked_by == "wang" and acked.ack_note == "on my way"
    assert acked.acked_at is not None and acked.acked_at.timestamp() == clock.now
    again = await store.acknowledge(alert.id, "li")
    assert again.acked_by == "wang"  # the first acknowledgement stands
    # Still one unresolved alert for this camera and kind while acknowledged.
    assert (await store.open("cam1", "work_safety", "offline", ["stalled"])).id == alert.id
    clock.now += 600
    resolved = await store.resolve(alert.id, "wang", "replaced the switch port")
    assert resolved.state == "resolved" and resolved.resolved_by == "wang"
    with pytest.raises(Conflict):
        await store.resolve(alert.id, "li")
    with pytest.raises(Conflict):
        await store.acknowledge(alert.id, "li")
    with pytest.raises(NotFound):
        await store.acknowledge("nope", "li")
    fresh = await store.open("cam1", "work_safety", "offline", ["refused"])
    assert fresh.id != alert.id


async def test_query_filters_newest_first_and_trim_keeps_open_alerts(redis: aioredis.Redis) -> None:
    clock = Clock()
    store = AlertStore(redis, clock=clock)
    old = await store.open("cam1", "public_security", "offline", ["refused"])
    await store.resolve(old.id, "auto")
    clock.now += 1
    still_open = await store.open("cam2", "public_security", "degraded", ["black"])
    clock.now += 40 * 86400
    new = await store.open("cam3", "environment", "offline", ["timeout"])
    assert [a.id for a in await store.query()] == [new.id, still_open.id, old.id]
    assert [a.id for a in await store.query(lines=["environment"])] == [new.id]
    assert [a.id for a in await store.query(state="resolved")] == [old.id]
    assert [a.id for a in await store.query(kind="degraded")] == [still_open.id]
    assert [a.id for a in await store.query(camera="cam1")] == [old.id]
    assert [a.id for a in await store.query(since=clock.now - 10)] == [new.id]
    assert await store.trim(30 * 86400) == 1
    assert await store.get(old.id) is None
    assert await store.get(still_open.id) is not None


async def test_reconcile_opens_updates_and_auto_resolves(redis: aioredis.Redis) -> None:
    service = AlertService(redis)
    try:
        changed = await service.reconcile("cam1", "land", {"offline": ["refused"]})
        assert [(a.kind, a.state) for a in changed] == [("offline", "open")]
        assert await service.reconcile("cam1", "land", {"offline": ["refused"]}) == []
        changed = await service.reconcile("cam1", "land", {"degraded": ["black"]})
        assert sorted((a.kind, a.state, a.resolved_by) for a in changed) == [
            ("degraded", "open", None),
            ("offline", "resolved", "auto"),
        ]
        changed = await service.reconcile("cam1", "land", {})
        assert [(a.kind, a.state) for a in changed] == [("degraded", "resolved")]
        assert await service.store.active() == []
    finally:
        await service.close()


async def test_acknowledgement_survives_concurrent_reason_updates(redis: aioredis.Redis) -> None:
    # An offline camera's reasons keep changing (eof, not_found, refused) while staff acknowledge:
    # the reasons update must never write the alert back to "open".
    store = AlertStore(redis)
    reasons = ["eof", "not_found", "refused"]
    for i in range(60):
        alert = await store.open(f"cam{i}", "safety", "offline", ["eof"])
        await asyncio.gather(
            *(store.open(f"cam{i}", "safety", "offline", [reasons[j % 3]]) for j in range(1, 4)),
            store.acknowledge(alert.id, "wang", "seen"),
        )
        final = await store.get(alert.id)
        assert final is not None and final.state == "acknowledged" and final.acked_by == "wang", i
