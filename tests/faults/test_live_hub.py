"""LiveHub on a real Valkey: one subscriber feeds every client's bounded queue; admission is counted."""

from __future__ import annotations

import asyncio

import pytest

from videohub.errors import LiveFull
from videohub.live import LiveEvent, LiveHub
from videohub.settings import WsSettings
from videohub.store import Store
from videohub.walls import CHANNEL


async def test_one_subscriber_feeds_every_client(store: Store) -> None:
    async with LiveHub(store, WsSettings()) as hub:
        await asyncio.wait_for(hub.subscribed.wait(), 10)
        with hub.admit() as a, hub.admit() as b, hub.admit() as pending:
            hub.join(a, "op1")
            hub.join(b, "op2")  # `pending` has not authenticated: it hears nothing
            await store.redis.publish(CHANNEL, '{"id": "main"}')
            for client in (a, b):
                assert await asyncio.wait_for(client.get(), 5) == LiveEvent("message", '{"id": "main"}')
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(pending.get(), 0.3)
            # One pub/sub connection serves them all: the server sees a single subscriber.
            assert await store.redis.pubsub_numsub(CHANNEL) == [(CHANNEL, 1)]


async def test_a_quiet_channel_is_pinged_not_taken_for_an_outage(store: Store) -> None:
    async with LiveHub(store, WsSettings(), ping_after=0.2) as hub:
        await asyncio.wait_for(hub.subscribed.wait(), 10)
        with hub.admit() as client:
            hub.join(client, "display")
            await asyncio.sleep(2.0)  # ten ping intervals without a message
            assert hub.state == "ok"
            await store.redis.publish(CHANNEL, "after the quiet")
            # No "redis" event came before the message: the hub never lost its subscription.
            assert await asyncio.wait_for(client.get(), 5) == LiveEvent("message", "after the quiet")


async def test_a_stalled_client_keeps_its_newest_events(store: Store) -> None:
    async with LiveHub(store, WsSettings(), buffer=8) as hub:
        await asyncio.wait_for(hub.subscribed.wait(), 10)
        with hub.admit() as stalled:
            hub.join(stalled, "display")
            for n in range(20):
                await store.redis.publish(CHANNEL, str(n))
            await asyncio.sleep(0.5)
            assert stalled.dropped == 12
            assert [(await stalled.get()).data for _ in range(8)] == [str(n) for n in range(12, 20)]


async def test_admission_counts_sockets_in_total_and_per_user(store: Store) -> None:
    hub = LiveHub(store, WsSettings(max_connections=3, max_connections_per_user=2))
    with hub.admit() as a, hub.admit() as b:
        hub.join(a, "op")
        hub.join(b, "op")
        with hub.admit() as c:
            with pytest.raises(LiveFull) as per_user:
                hub.join(c, "op")
            assert per_user.value.scope == "user"
            with pytest.raises(LiveFull) as total, hub.admit():
                pass
            assert total.value.scope == "total"
    # Every place was given back.
    assert hub.connections == 0
    with hub.admit() as d, hub.admit() as e:
        hub.join(d, "op")
        hub.join(e, "op")
