"""The reconnect state machine of one camera stream, its backoff, and the stall watchdog.

Pure logic with an injected clock and random source, so it is unit-tested without a camera:

    connecting ──first packet──► streaming ──error / stall / eof──► backing_off ──delay──► connecting
         └──────────────── open fails ────────────────────────────────┘
    any state ──stop()──► stopped (final)

Modelled on go2rtc's ``internal/streams/producer.go`` and Frigate's ffmpeg watchdog: a capped,
jittered exponential delay, reset only after a session has streamed for a while (so a camera that
accepts and drops at once cannot make us retry in a tight loop), and a generation id so a retry
scheduled by an old session exits instead of racing a new one.
"""

from __future__ import annotations

import random as _random
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from ingest.errors import Reason


class State(StrEnum):
    CONNECTING = "connecting"
    STREAMING = "streaming"
    BACKING_OFF = "backing_off"
    STOPPED = "stopped"


@dataclass(frozen=True, slots=True)
class BackoffPolicy:
    """Delays between attempts: ``initial * factor**n`` capped at ``maximum``, times a jitter in
    ``[1 - jitter, 1 + jitter]`` (still capped), so many cameras failing together do not retry in step."""

    initial: float = 0.5
    maximum: float = 30.0
    factor: float = 2.0
    jitter: float = 0.2
    reset_after: float = 10.0
    """A session that streamed at least this long resets the delay to ``initial``."""

    def __post_init__(self) -> None:
        if not 0 < self.initial <= self.maximum:
            raise ValueError("backoff: need 0 < initial <= maximum")
        if self.factor < 1 or not 0 <= self.jitter < 1:
            raise ValueError("backoff: need factor >= 1 and 0 <= jitter < 1")

    def delay(self, failures: int, rand: Callable[[], float]) -> float:
        """The delay after ``failures`` consecutive failed sessions (``failures >= 1``)."""
        base = min(self.maximum, self.initial * self.factor ** max(0, failures - 1))
        jittered = base * (1 - self.jitter + 2 * self.jitter * rand())
        return min(self.maximum, jittered)


@dataclass(frozen=True, slots=True)
class Transition:
    state: State
    reason: Reason | None
    delay: float | None
    """Seconds until the next attempt (backing_off only)."""
    generation: int


class Reconnector:
    """The state of one stream's ingest session loop. Not thread-safe: one owner thread drives it.

    The owner calls ``connecting()`` before each open, ``packet()`` for each packet, ``failed()``
    when a session ends, and sleeps ``Transition.delay`` (waking early on stop). ``generation`` grows
    with every ``restart()`` (new URL, new credentials); a loop whose generation is stale exits.
    """

    def __init__(
        self,
        policy: BackoffPolicy | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        rand: Callable[[], float] = _random.random,
    ) -> None:
        self.policy = policy or BackoffPolicy()
        self._clock = clock
        self._rand = rand
        self.state = State.CONNECTING
        self.reason: Reason | None = None
        self.failures = 0
        """Consecutive failed sessions (grows the delay)."""
        self.reconnects = 0
        """Sessions started after the first one."""
        self.generation = 0
        self.retry_at: float | None = None
        self._attempts = 0
        self._streaming_since: float | None = None

    def _to(self, state: State, reason: Reason | None = None, delay: float | None = None) -> Transition:
        self.state = state
        self.reason = reason
        return Transition(state, reason, delay, self.generation)

    def connecting(self) -> Transition:
        if self.state is State.STOPPED:
            return self._to(State.STOPPED, self.reason)
        if self._attempts:
            self.reconnects += 1
        self._attempts += 1
        self.retry_at = None
        self._streaming_since = None
        return self._to(State.CONNECTING, self.reason)

    def packet(self) -> Transition | None:
        """A packet arrived; returns the transition when it is the session's first."""
        if self.state is not State.CONNECTING:
            return None
        self._streaming_since = self._clock()
        return self._to(State.STREAMING)

    def failed(self, reason: Reason) -> Transition:
        """The session ended for ``reason``: back off (unless stopped)."""
        if self.state is State.STOPPED:
            return self._to(State.STOPPED, self.reason)
        now = self._clock()
        if self._streaming_since is not None and now - self._streaming_since >= self.policy.reset_after:
            self.failures = 0
        self._streaming_since = None
        self.failures += 1
        delay = self.policy.delay(self.failures, self._rand)
        self.retry_at = now + delay
        return self._to(State.BACKING_OFF, reason, delay)

    def restart(self) -> int:
        """Start over (URL or credentials changed): a new generation, no accumulated delay."""
        self.generation += 1
        self.failures = 0
        return self.generation

    def stop(self) -> Transition:
        self.retry_at = None
        return self._to(State.STOPPED, self.reason)


class Watchdog:
    """Says when no packet has arrived for ``timeout`` seconds while a session is open (a stall:
    the camera keeps the RTSP session but sends nothing, or sends only audio)."""

    def __init__(self, timeout: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.timeout = timeout
        self._clock = clock
        self._last = clock()

    def reset(self) -> None:
        self._last = self._clock()

    def feed(self, at: float | None = None) -> None:
        self._last = self._clock() if at is None else at

    def expired(self) -> bool:
        return self._clock() - self._last > self.timeout

    @property
    def silent_for(self) -> float:
        return self._clock() - self._last
