"""The composition root and the one lifecycle idiom: every part closes twice, and concurrently, cleanly."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest

from tests.apiclient import api_session
from tests.conftest import make_settings
from videohub.aio import CloseOnce, Part, TaskOwner
from videohub.errors import Unavailable
from videohub.services import Parts, Services, build_services
from videohub.settings import Settings
from videohub.store import Store
from videohub.valkey import EmbeddedValkey, Watchdog


def _parts(svc: Services) -> dict[str, Part]:
    found: dict[str, Part | None] = {
        "live": svc.live,
        "hub": svc.hub,
        "sessions": svc.sessions,
        "rights": svc.rights,
        "alerts": svc.alerts,
        "health": svc.health,
        "follower": svc.follower,
    }
    return {name: part for name, part in found.items() if part is not None}


async def _started(svc: Services) -> dict[str, Part]:
    parts = _parts(svc)
    for part in parts.values():
        await part.start()
    return parts


def _background(name: str) -> list[asyncio.Task[object]]:
    """The tasks a part still owns (its TaskOwner's holder and its children are named after it)."""
    prefix = {"sessions": "whep", "rights": "whep-rights", "follower": "registry-"}.get(name, name)
    return [
        t
        for t in asyncio.all_tasks()
        if not t.done() and t.get_name().startswith(prefix) and t is not asyncio.current_task()
    ]


async def test_build_services_builds_every_part_in_dependency_order(settings: Settings, store: Store) -> None:
    svc = build_services(settings, store)
    assert [type(p).__name__ for p in svc.parts()] == [
        "FeedManager",
        "WarmHolds",
        "SessionManager",
        "RightsSweep",
        "AlertService",
        "HealthMonitor",
        "RegistryFollower",
    ]
    assert svc.sessions is not None and svc.rights is not None and svc.rights.manager is svc.sessions
    core = build_services(settings, store, Parts())
    assert (core.hub, core.sessions, core.rights, core.alerts, core.health, core.follower) == (None,) * 6
    with pytest.raises(ValueError, match="Feed hub"):
        build_services(settings, store, Parts(whep=True))


async def test_every_part_closes_twice(store: Store) -> None:
    svc = build_services(make_settings(), store)
    parts = await _started(svc)
    assert set(parts) == {"live", "hub", "sessions", "rights", "alerts", "health", "follower"}
    for name, part in reversed(parts.items()):
        await part.close()
        await part.close()  # a no-op, not an error
        assert _background(name) == [], f"{name} left tasks running"
    assert svc.hub is not None
    with pytest.raises(Unavailable, match="stopping"):  # a closed hub serves no viewer: 503
        await svc.hub.subscribe("cam1")


async def test_a_concurrent_second_close_waits_for_the_first(store: Store) -> None:
    svc = build_services(make_settings(), store)
    parts = await _started(svc)
    for name, part in reversed(parts.items()):
        first = asyncio.create_task(part.close())
        await asyncio.sleep(0)  # the first caller is inside close()
        await part.close()
        assert first.done(), f"{name}: the second close() returned before the first finished"
        assert _background(name) == [], f"{name} left tasks running"
        await first


async def test_each_part_closes_concurrently_from_many_callers(store: Store) -> None:
    svc = build_services(make_settings(), store)
    parts = await _started(svc)
    for name, part in reversed(parts.items()):
        await asyncio.gather(*(part.close() for _ in range(5)))
        assert _background(name) == [], f"{name} left tasks running"


async def test_the_embedded_valkey_watchdog_closes_twice_and_concurrently(tmp_path: Path) -> None:
    embedded = EmbeddedValkey(tmp_path)
    await asyncio.to_thread(embedded.start)
    try:
        for closing in ("twice", "concurrently"):
            dog = Watchdog(embedded, 0.1)
            await dog.start()
            if closing == "twice":
                await dog.close()
                await dog.close()
            else:
                await asyncio.gather(dog.close(), dog.close(), dog.close())
            assert _background("valkey-watchdog") == []
        assert embedded.exit_code() is None  # stopping the watchdog leaves the server running
    finally:
        await asyncio.to_thread(embedded.stop)


async def test_the_lifespan_stops_every_part_and_the_api_answers_503_without_one(
    settings: Settings, store: Store
) -> None:
    async with api_session(settings, store, parts=Parts()) as api:
        svc = api.app.state.services
        assert isinstance(svc, Services) and svc.hub is None
        headers = api.auth("admin")
        for path in ("/api/sessions", "/api/alerts", "/api/health/lines"):
            response = await api.client.get(path, headers=headers)
            assert response.status_code == 503, path
            assert "not running" in response.json()["detail"]


async def test_task_owner_keeps_the_other_tasks_when_one_fails(caplog: pytest.LogCaptureFixture) -> None:
    owner = TaskOwner("t")
    await owner.start()
    ticks = 0

    async def steady() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0.01)

    async def broken() -> None:
        raise RuntimeError("camera loop bug")

    with caplog.at_level(logging.ERROR, logger="videohub.aio"):
        owner.spawn(steady(), name="steady")
        owner.spawn(broken(), name="broken")
        await asyncio.sleep(0.1)
    assert "camera loop bug" in caplog.text
    before = ticks
    await asyncio.sleep(0.05)
    assert ticks > before  # still running
    await owner.close()
    with pytest.raises(RuntimeError):
        owner.spawn(steady())


async def test_close_once_runs_its_body_once() -> None:
    runs = 0
    gate = asyncio.Event()

    async def body() -> None:
        nonlocal runs
        runs += 1
        await gate.wait()

    once = CloseOnce()
    callers = [asyncio.create_task(once.run(body)) for _ in range(3)]
    await asyncio.sleep(0.01)
    assert not any(c.done() for c in callers)  # every caller waits for the first
    gate.set()
    await asyncio.gather(*callers)
    await once.run(body)
    assert runs == 1
