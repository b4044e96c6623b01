"""OutageLog: a loop that fails every second for minutes writes a few lines, not one per failure."""

from __future__ import annotations

import logging

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError

from videohub.store import OutageLog


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_an_outage_is_a_few_lines(caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock()
    log = OutageLog(logging.getLogger("t.outage"), "hub", every=60.0, clock=clock)
    caplog.set_level(logging.INFO, "t.outage")
    for _ in range(300):  # five minutes of one failure per second
        log.failed(RedisConnectionError("Error 111 connecting"))
        clock.now += 1.0
    log.ok()
    log.ok()  # a second success says nothing more
    lines = [record.getMessage() for record in caplog.records]
    assert lines[0] == "hub: redis unavailable (ConnectionError: Error 111 connecting)"
    assert len(lines) == 1 + 4 + 1, lines  # the first failure, one per minute, the recovery
    assert "still unavailable after 60 s (61 failures" in lines[1]
    assert lines[-1] == "hub: redis back after 300 s (300 failures)"


def test_failures_far_apart_are_new_outages(caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock()
    log = OutageLog(logging.getLogger("t.apart"), "api", every=30.0, clock=clock)
    caplog.set_level(logging.INFO, "t.apart")
    log.failed(RedisConnectionError("first"))
    clock.now += 3600.0  # nothing reported success (an API only fails), but an hour has passed
    log.failed(RedisConnectionError("second"))
    assert [record.getMessage() for record in caplog.records] == [
        "api: redis unavailable (ConnectionError: first)",
        "api: redis unavailable (ConnectionError: second)",
    ]
