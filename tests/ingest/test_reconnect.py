"""The reconnect state machine, backoff and watchdog with an injected clock and random source."""

from __future__ import annotations

import pytest

from ingest.errors import Reason
from ingest.reconnect import BackoffPolicy, Reconnector, State, Watchdog


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_states_follow_connecting_streaming_backing_off() -> None:
    clock = Clock()
    rc = Reconnector(BackoffPolicy(), clock=clock, rand=lambda: 0.5)
    assert rc.connecting().state is State.CONNECTING
    first = rc.packet()
    assert first is not None and first.state is State.STREAMING
    assert rc.packet() is None  # only the first packet is a transition
    failed = rc.failed(Reason.REFUSED)
    assert (failed.state, failed.reason) == (State.BACKING_OFF, Reason.REFUSED)
    assert failed.delay == pytest.approx(0.5)
    assert rc.connecting().state is State.CONNECTING
    assert rc.reconnects == 1


def test_repeated_failures_back_off_exponentially_up_to_the_cap() -> None:
    # Wrong credentials must not make a retry storm: each auth failure waits longer, up to 30 s.
    rc = Reconnector(BackoffPolicy(initial=0.5, maximum=30.0), clock=Clock(), rand=lambda: 0.5)
    delays = []
    for _ in range(10):
        rc.connecting()
        transition = rc.failed(Reason.AUTH_FAILED)
        delays.append(transition.delay)
    assert delays[:7] == pytest.approx([0.5, 1, 2, 4, 8, 16, 30])
    assert delays[7:] == pytest.approx([30, 30, 30])


def test_jitter_spreads_delays_but_never_exceeds_the_cap() -> None:
    policy = BackoffPolicy(initial=1.0, maximum=8.0, jitter=0.2)
    assert policy.delay(1, lambda: 0.0) == pytest.approx(0.8)
    assert policy.delay(1, lambda: 0.999999) == pytest.approx(1.2, abs=1e-4)
    assert policy.delay(10, lambda: 0.999999) == 8.0


def test_a_long_session_resets_the_delay_a_short_one_does_not() -> None:
    clock = Clock()
    rc = Reconnector(BackoffPolicy(initial=0.5, reset_after=10.0), clock=clock, rand=lambda: 0.5)
    for _ in range(3):
        rc.connecting()
        rc.failed(Reason.REFUSED)
    rc.connecting()
    rc.packet()
    clock.now += 2.0  # accepted, streamed briefly, dropped: keep growing
    assert rc.failed(Reason.EOF).delay == pytest.approx(4.0)
    rc.connecting()
    rc.packet()
    clock.now += 60.0  # a healthy hour-long session ending: retry quickly
    assert rc.failed(Reason.STALLED).delay == pytest.approx(0.5)


def test_restart_bumps_the_generation_and_forgets_failures() -> None:
    rc = Reconnector(clock=Clock(), rand=lambda: 0.5)
    rc.connecting()
    rc.failed(Reason.NOT_FOUND)
    before = rc.generation
    assert rc.restart() == before + 1
    assert rc.failures == 0


def test_stop_is_final() -> None:
    rc = Reconnector(clock=Clock(), rand=lambda: 0.5)
    rc.connecting()
    assert rc.stop().state is State.STOPPED
    assert rc.connecting().state is State.STOPPED
    assert rc.failed(Reason.EOF).state is State.STOPPED


def test_watchdog_expires_after_silence() -> None:
    clock = Clock()
    dog = Watchdog(3.0, clock)
    clock.now += 2.9
    assert not dog.expired()
    dog.feed()
    clock.now += 3.1
    assert dog.expired()
    assert dog.silent_for == pytest.approx(3.1)


def test_bad_policy_is_rejected() -> None:
    with pytest.raises(ValueError):
        BackoffPolicy(initial=10, maximum=1)
