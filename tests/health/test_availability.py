"""Uptime % and MTTR from state transitions: the pure computation, and the Redis history."""

from __future__ import annotations

import pytest
import redis.asyncio as aioredis

from videohub.health.availability import AvailabilityHistory, combine, compute
from videohub.health.state import State, Transition

T0 = 1_700_000_000.0


def tr(at: float, old: State, new: State) -> Transition:
    return Transition("cam1", T0 + at, old, new, ("refused",) if new == "offline" else ())


def test_one_outage_in_an_hour() -> None:
    history = [tr(0, "unknown", "online"), tr(1000, "online", "offline"), tr(1300, "offline", "online")]
    a = compute(history, T0, T0 + 3600)
    assert a.known_seconds == 3600
    assert a.offline_seconds == 300
    assert a.availability == pytest.approx(3300 / 3600)
    assert a.incidents == 1 and a.mttr_seconds == 300


def test_degraded_counts_as_available_but_not_healthy() -> None:
    history = [tr(0, "unknown", "online"), tr(600, "online", "degraded"), tr(1200, "degraded", "online")]
    a = compute(history, T0, T0 + 3600)
    assert a.availability == 1.0
    assert a.healthy == pytest.approx(3000 / 3600)
    assert a.mttr_seconds == 600


def test_unknown_time_is_excluded_and_state_before_the_window_carries_in() -> None:
    a = compute([tr(1800, "unknown", "online")], T0, T0 + 3600)
    assert a.known_seconds == 1800 and a.availability == 1.0
    b = compute([tr(100, "offline", "online")], T0, T0 + 3600, initial="offline")
    assert b.offline_seconds == 100 and b.incidents == 1 and b.mttr_seconds == 100
    c = compute([], T0, T0 + 3600)
    assert c.availability is None and c.mttr_seconds is None


def test_incident_still_open_has_no_repair_time_yet() -> None:
    a = compute([tr(0, "unknown", "online"), tr(3000, "online", "offline")], T0, T0 + 3600)
    assert a.incidents == 0 and a.mttr_seconds is None
    assert a.availability == pytest.approx(3000 / 3600)


def test_line_combines_time_weighted() -> None:
    up = compute([tr(0, "unknown", "online")], T0, T0 + 3600)
    down = compute([tr(0, "unknown", "online"), tr(0.5 * 3600, "online", "offline")], T0, T0 + 3600)
    line = combine([up, down])
    assert line.availability == pytest.approx(0.75)


async def test_history_in_redis_gives_window_availability_and_trims(redis: aioredis.Redis) -> None:
    h = AvailabilityHistory(redis)
    for t in [tr(-7200, "unknown", "online"), tr(1000, "online", "offline"), tr(1300, "offline", "online")]:
        await h.record(t)
    result = await h.window(["cam1", "cam2"], T0, T0 + 3600)
    assert result["cam1"].offline_seconds == 300
    assert result["cam1"].known_seconds == 3600  # online since before the window
    assert result["cam2"].availability is None
    recent = await h.recent("cam1")
    assert [t.new for t in recent] == ["online", "offline", "online"]
    await h.trim(["cam1"], T0 + 1100)
    assert [t.new for t in await h.recent("cam1")] == ["online", "offline"]
    assert (await h.window(["cam1"], T0, T0 + 3600))["cam1"].offline_seconds == 300
