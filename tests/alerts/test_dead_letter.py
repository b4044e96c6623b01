"""Webhook deliveries give up: an event a receiver keeps refusing is parked, and later events flow.

Real Valkey, real HTTP receivers (``WebhookRecorder``), the real ``AlertService`` delivery tasks.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
import redis.asyncio as aioredis

from tests.alerts.recorder import WebhookRecorder
from tests.alerts.test_delivery import SECRET, Running, wait_for
from videohub.alerts.service import AlertService
from videohub.settings.alerts import AlertSettings, WebhookSettings


@pytest.fixture
async def recorders() -> AsyncIterator[Callable[[int], Awaitable[WebhookRecorder]]]:
    started: list[WebhookRecorder] = []

    async def start(status: int) -> WebhookRecorder:
        rec = WebhookRecorder(status=status)
        await rec.start()
        started.append(rec)
        return rec

    try:
        yield start
    finally:
        for rec in started:
            await rec.stop()


def two_hooks(broken: WebhookRecorder, healthy: WebhookRecorder, **extra: object) -> AlertSettings:
    return AlertSettings.model_validate(
        {
            "webhooks": [
                WebhookSettings(name="broken", url=broken.url, secret=SECRET),
                WebhookSettings(name="healthy", url=healthy.url, secret=SECRET),
            ],
            "webhook_backoff_initial_seconds": 0.05,
            "webhook_backoff_max_seconds": 0.2,
            **extra,
        }
    )


async def until(check: Callable[[], Awaitable[bool]], within: float = 20.0) -> None:
    deadline = asyncio.get_running_loop().time() + within
    while not await check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"condition not met within {within} s")
        await asyncio.sleep(0.05)


async def test_a_webhook_answering_500_forever_has_its_events_parked_and_another_hook_gets_every_event(
    redis: aioredis.Redis, recorders: Callable[[int], Awaitable[WebhookRecorder]]
) -> None:
    broken, healthy = await recorders(500), await recorders(200)
    service = AlertService(redis, two_hooks(broken, healthy, webhook_max_attempts=3))
    async with Running(service):
        for i in range(5):
            await service.reconcile(f"cam{i}", "land", {"offline": ["timeout"]})
        await wait_for(lambda: len(healthy.deliveries()) == 5)

        async def all_parked() -> bool:
            return int(await redis.xlen("vh:alerts:dead:broken")) == 5

        await until(all_parked)
        # Every event was tried up to the cap, one after the other: none blocked the next for ever.
        assert broken.requests == 5 * 3
        parked = await service.dead.list("broken")
        assert [p.alert.camera for p in reversed(parked)] == [f"cam{i}" for i in range(5)]
        assert {(p.attempts, p.last_error, p.last_status) for p in parked} == {(3, "HTTP 500", 500)}
        # Acknowledged in the hook's consumer group: nothing is pending there any more.
        pending = await redis.xpending("vh:alerts:events", "webhook:broken")
        assert pending["pending"] == 0
        # A later event still reaches both hooks (and is parked again for the broken one).
        await service.reconcile("cam9", "land", {"degraded": ["black"]})
        await wait_for(lambda: len(healthy.deliveries()) == 6)
        await until(lambda: _xlen(redis, "vh:alerts:dead:broken", 6))
    assert [e[1] for e in healthy.events()] == [*(f"cam{i}" for i in range(5)), "cam9"]
    assert int(await redis.xlen("vh:alerts:dead:healthy")) == 0


async def _xlen(redis: aioredis.Redis, key: str, n: int) -> bool:
    return int(await redis.xlen(key)) == n


async def test_an_answer_a_retry_cannot_change_parks_the_event_at_once(
    redis: aioredis.Redis, recorders: Callable[[int], Awaitable[WebhookRecorder]]
) -> None:
    gone, healthy = await recorders(410), await recorders(200)
    service = AlertService(redis, two_hooks(gone, healthy))  # the default cap: 30 attempts
    async with Running(service):
        await service.reconcile("cam1", "land", {"offline": ["refused"]})
        await until(lambda: _xlen(redis, "vh:alerts:dead:broken", 1))
        assert gone.requests == 1
        (parked,) = await service.dead.list("broken")
        assert (parked.attempts, parked.last_status, parked.event) == (1, 410, "opened")


async def test_an_event_undelivered_for_the_give_up_time_is_parked(
    redis: aioredis.Redis, recorders: Callable[[int], Awaitable[WebhookRecorder]]
) -> None:
    busy, healthy = await recorders(503), await recorders(200)
    service = AlertService(
        redis, two_hooks(busy, healthy, webhook_max_attempts=10_000, webhook_give_up_after_seconds=1)
    )
    async with Running(service):
        await service.reconcile("cam1", "land", {"offline": ["refused"]})
        await until(lambda: _xlen(redis, "vh:alerts:dead:broken", 1))
        (parked,) = await service.dead.list("broken")
        assert 1 < parked.attempts < 10_000 and parked.last_error == "HTTP 503"
        assert (parked.parked_at - parked.alert.updated_at).total_seconds() >= 1


async def test_an_event_retried_for_long_is_not_taken_over_by_another_worker(
    redis: aioredis.Redis, recorders: Callable[[int], Awaitable[WebhookRecorder]]
) -> None:
    """Two workers share the hook's consumer group. The one retrying an event keeps it claimed, so
    the other (which takes over events left idle for ``webhook_claim_idle_seconds``) leaves it alone:
    the receiver gets it once, not once per worker."""
    busy = await recorders(503)
    settings = AlertSettings(
        webhooks=[WebhookSettings(name="ops", url=busy.url)],
        webhook_backoff_initial_seconds=0.05,
        webhook_backoff_max_seconds=0.2,
        webhook_claim_idle_seconds=1,
        webhook_max_attempts=10_000,
    )
    first = AlertService(redis, settings, consumer="worker-a")
    second = AlertService(redis, settings, consumer="worker-b")
    async with Running(first), Running(second):
        await first.reconcile("cam1", "land", {"offline": ["refused"]})
        await wait_for(lambda: busy.requests >= 3)
        await asyncio.sleep(3.0)  # three claim-idle times of retrying
        busy.status = 200
        await wait_for(lambda: len(busy.received) >= 1)
        await asyncio.sleep(1.0)
    assert len(busy.received) == 1
