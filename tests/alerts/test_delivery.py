"""Alert delivery: live to the UI, and at-least-once to webhooks through outages and restarts."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import random
from collections.abc import AsyncIterator, Callable

import pytest
import redis.asyncio as aioredis

from tests.alerts.recorder import WebhookRecorder
from videohub.aio import cancel_and_wait
from videohub.alerts.models import AlertEvent
from videohub.alerts.service import AlertService
from videohub.settings.alerts import AlertSettings, WebhookSettings

SECRET = "s3cret-for-tests"


@pytest.fixture
async def recorder() -> AsyncIterator[WebhookRecorder]:
    rec = WebhookRecorder()
    await rec.start()
    try:
        yield rec
    finally:
        await rec.stop()


def settings_for(recorder: WebhookRecorder, lines: list[str] | None = None) -> AlertSettings:
    hook = WebhookSettings(name="ops", url=recorder.url, secret=SECRET, lines=lines or [])
    return AlertSettings(
        webhooks=[hook], webhook_backoff_initial_seconds=0.05, webhook_backoff_max_seconds=0.3
    )


async def wait_for(predicate: Callable[[], bool], within: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + within
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.05)


class Running:
    """An AlertService with its delivery tasks running (one "service process")."""

    def __init__(self, service: AlertService) -> None:
        self.service = service
        self.task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> AlertService:
        await self.service.setup()
        self.task = asyncio.create_task(self.service.run())
        await asyncio.sleep(0.1)
        return self.service

    async def __aexit__(self, *exc: object) -> None:
        assert self.task is not None
        self.task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await self.task


async def test_webhook_receives_signed_json_only_for_its_lines(
    redis: aioredis.Redis, recorder: WebhookRecorder
) -> None:
    async with Running(AlertService(redis, settings_for(recorder, ["public_security"]))) as service:
        await service.reconcile("cam1", "public_security", {"offline": ["refused"]})
        await service.reconcile("cam9", "environment", {"offline": ["refused"]})
        await service.reconcile("cam1", "public_security", {})
        await wait_for(lambda: len(recorder.received) >= 2)
        await asyncio.sleep(0.3)
    assert recorder.events() == [("opened", "cam1", "offline"), ("resolved", "cam1", "offline")]
    first = recorder.received[0]
    expected = "sha256=" + hmac.new(SECRET.encode(), first.body, hashlib.sha256).hexdigest()
    assert first.headers["x-videohub-signature"] == expected
    assert first.json()["alert"]["reasons"] == ["refused"]


async def test_receiver_down_for_a_while_gets_every_alert_once_back(
    redis: aioredis.Redis, recorder: WebhookRecorder
) -> None:
    await recorder.stop()
    async with Running(AlertService(redis, settings_for(recorder))) as service:
        for i in range(5):
            await service.reconcile(f"cam{i}", "land", {"offline": ["timeout"]})
        await asyncio.sleep(1.0)  # several failed attempts
        recorder.status = 503  # up but failing
        await recorder.start()
        await asyncio.sleep(0.5)
        assert recorder.received == []
        recorder.status = 200
        await wait_for(lambda: len(recorder.deliveries()) == 5)
    assert [e[1] for e in recorder.events()] == [f"cam{i}" for i in range(5)]  # in order


async def test_nothing_is_lost_across_a_service_restart(
    redis: aioredis.Redis, recorder: WebhookRecorder
) -> None:
    await recorder.stop()
    async with Running(AlertService(redis, settings_for(recorder), consumer="worker-a")) as first:
        await first.reconcile("cam1", "land", {"offline": ["refused"]})
        await first.reconcile("cam2", "land", {"degraded": ["black"]})
        await asyncio.sleep(0.5)  # read from the group, delivery failing, pending in Redis
    # While the service is down, the camera recovers and a new one fails (written by another process).
    offline = AlertService(redis, settings_for(recorder), consumer="worker-a")
    await offline.reconcile("cam1", "land", {})
    await offline.close()
    await recorder.start()
    async with Running(AlertService(redis, settings_for(recorder), consumer="worker-a")):
        await wait_for(lambda: len(recorder.deliveries()) == 3)
    assert sorted(recorder.events()) == [
        ("opened", "cam1", "offline"),
        ("opened", "cam2", "degraded"),
        ("resolved", "cam1", "offline"),
    ]


async def test_live_subscribers_see_alert_events(redis: aioredis.Redis) -> None:
    received: list[AlertEvent] = []

    async with Running(AlertService(redis)) as service:

        async def listen(ready: asyncio.Event) -> None:
            async with service.live.subscribe() as sub:
                ready.set()
                async for event in sub:
                    received.append(event)

        ready = asyncio.Event()
        listener = asyncio.create_task(listen(ready))
        await ready.wait()
        alert = (await service.reconcile("cam1", "land", {"offline": ["refused"]}))[0]
        await service.acknowledge(alert.id, "wang", "checking")
        await wait_for(lambda: len(received) == 2)
        listener.cancel()
        await asyncio.gather(listener, return_exceptions=True)
    assert [e.event for e in received] == ["opened", "acknowledged"]
    assert received[1].alert.acked_by == "wang"


async def test_alert_delivery_stops_every_time_it_is_cancelled(
    redis: aioredis.Redis, recorder: WebhookRecorder
) -> None:
    """A service that is told to stop stops: cancelling the delivery loops at any moment ends them.

    redis-py sends each command through asyncio.wait_for, which on Python 3.11 sometimes swallows a
    cancel (see videohub.aio); without the loops' checkpoints about 4 % of these cancels were lost
    and the service's shutdown hung forever.
    """
    rng = random.Random(7)
    stuck = 0
    for _ in range(100):
        service = AlertService(redis, settings_for(recorder))
        await service.setup()
        task = asyncio.create_task(service.run())
        await asyncio.sleep(rng.uniform(0.0, 0.05))
        task.cancel()
        done, _ = await asyncio.wait({task}, timeout=3.0)
        if not done:
            stuck += 1
            await cancel_and_wait(task)
        await service.close()
    assert stuck == 0, f"{stuck} of 100 cancels were lost"
