"""One camera stream's fan-out: the GOP cache and a bounded buffer per subscriber.

Sits between ingest and the viewers (Source → **Feed** → WHEP sessions, snapshots, health).
``Feed.publish`` is called by the ingest thread itself and never blocks: it updates the GOP cache
and the subscribers' queues under a short lock, and wakes the event loop only for a subscriber that
is waiting in ``get()``. A camera nobody watches therefore costs the loop nothing (measured: a loop
wake-up per packet costs several times the rest of passthrough), and a viewer can never slow the
ingest or another viewer.

- GOP cache: the packets since the last keyframe. A new subscriber starts with that burst, so its
  first picture comes at once instead of at the camera's next keyframe (DESIGN decision 3).
- Bounded buffers: each subscriber queues at most ``max_packets``/``max_bytes``. Packets are shared
  immutable objects, so a queue holds references, not copies. A subscriber that overflows, or that
  is a whole GOP behind when a new keyframe arrives, drops what it has queued and resumes at a
  keyframe; every dropped packet is counted (``Subscription.drops``). aiortc's MediaRelay is not
  used: its queues are unbounded.
- Direct delivery: a subscriber that has caught up (its queue empty) may hand the feed a *sink*
  (``Subscription.direct``), a non-blocking function the ingest thread then calls with each new
  packet instead of queueing it and waking the loop. A WHEP viewer's sender does this after its GOP
  burst: a loop wake-up per frame was most of one viewer's CPU (bench/fanout_cpu.py). The switch is
  made under the feed's lock with an empty queue, so no packet is lost or reordered.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from ingest.handoff import Handoff
from ingest.packet import Packet
from videohub.errors import DeliveryFailed, FeedClosed

log = logging.getLogger(__name__)


Sink = Callable[[Packet], bool]
"""Called by the ingest thread with each packet; must not block. False: the packet was dropped."""


@dataclass(frozen=True, slots=True)
class FeedInfo:
    """What the feed carries: always H.264 after normalizing; size as the viewer will see it."""

    codec: str
    width: int | None
    height: int | None
    mode: str
    """passthrough or transcode."""


class Subscription:
    """One viewer's bounded view of a Feed (the WHEP session, a snapshot or a health probe holds one).

    ``get()`` returns the next packet (the first is a keyframe with SPS/PPS), waiting as needed, and
    raises FeedClosed when the feed ends or after ``close()``. Use it from the event loop only; the
    queue is shared with the ingest thread under the feed's lock.
    """

    def __init__(self, feed: Feed, max_packets: int, max_bytes: int) -> None:
        self.feed = feed
        self._max_packets = max_packets
        self._max_bytes = max_bytes
        self._queue: deque[Packet] = deque()
        self._bytes = 0
        self._drops = 0
        self._need_keyframe = True
        self._queued_keyframes = 0
        self._waiter: asyncio.Future[None] | None = None
        self._wake_pending = False
        self._closed: str | None = None
        self._failed = False
        self._sink: Sink | None = None
        self.delivered = 0

    # -- the viewer's side (event loop) ------------------------------------------------------

    @property
    def drops(self) -> int:
        """Packets this subscriber lost because it fell behind."""
        return self._drops

    @property
    def info(self) -> FeedInfo | None:
        """Codec and picture size of the feed (None until the camera has been opened once)."""
        return self.feed.info

    @property
    def closed(self) -> bool:
        return self._closed is not None

    @property
    def queued(self) -> int:
        return len(self._queue)

    @property
    def queued_bytes(self) -> int:
        return self._bytes

    async def get(self) -> Packet:
        lock = self.feed._lock
        while True:
            with lock:
                if self._closed is not None:
                    raise (DeliveryFailed if self._failed else FeedClosed)(self._closed)
                if self._queue:
                    packet = self._queue.popleft()
                    self._bytes -= packet.size
                    if packet.keyframe:
                        self._queued_keyframes -= 1
                    self.delivered += 1
                    return packet
                waiter = self._waiter = asyncio.get_running_loop().create_future()
            try:
                await waiter
            finally:
                with lock:
                    self._waiter = None

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> Packet:
        try:
            return await self.get()
        except FeedClosed:
            raise StopAsyncIteration from None

    @property
    def is_direct(self) -> bool:
        return self._sink is not None

    def direct(self, sink: Sink) -> bool:
        """From now on, have the ingest thread call ``sink(packet)`` for each packet (True), if this
        subscription has nothing queued (else False: read on and try again). ``get()`` then only
        waits for the end: it raises FeedClosed when the feed or the subscription ends, and
        DeliveryFailed when ``sink`` raised. Loop only.
        """
        with self.feed._lock:
            if self._closed is not None or self._queue or self._sink is not None:
                return False
            self._sink = sink
            return True

    def close(self) -> None:
        """Leave the feed. Idempotent."""
        with self.feed._lock:
            if self._closed is not None:
                return
            self._end("subscription closed")
        self.feed._remove(self)

    # -- the feed's side (under the feed's lock) ---------------------------------------------

    def _deliver(self, sink: Sink, packet: Packet) -> None:
        """The ingest thread, outside the feed's lock: one packet to a direct subscriber."""
        if self._closed is not None:  # closed since the feed listed it: nobody wants it any more
            return
        try:
            delivered = sink(packet)
        except Exception as exc:
            with self.feed._lock:
                if self._sink is not sink:
                    return
                self._sink = None
            log.exception("direct delivery to a subscriber of %s failed", self.feed.key)
            self.feed._handoff.call(self._fail, f"delivery failed ({type(exc).__name__})")
            return
        if delivered:
            self.delivered += 1
        else:
            self._drops += 1

    def _fail(self, reason: str) -> None:
        """On the loop: a sink failed; end this subscription only."""
        with self.feed._lock:
            if self._closed is not None:
                return
            self._failed = True
            self._end(reason)
        self.feed._remove(self)

    def _wake(self) -> None:
        """Runs on the loop: resolve the waiting ``get``."""
        with self.feed._lock:
            self._wake_pending = False
            waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _needs_wake(self) -> bool:
        """Under the lock: True when a wake-up must be scheduled (someone waits, none is on its way)."""
        if self._waiter is None or self._wake_pending:
            return False
        self._wake_pending = True
        return True

    def _drop_queue(self) -> None:
        self._drops += len(self._queue)
        self._queue.clear()
        self._bytes = 0
        self._queued_keyframes = 0

    def _start(self, burst: list[Packet]) -> None:
        """Begin with the GOP cache (starts with a keyframe), if it fits the bounds."""
        size = sum(p.size for p in burst)
        if burst and len(burst) <= self._max_packets and size <= self._max_bytes:
            self._queue.extend(burst)
            self._bytes = size
            self._queued_keyframes = sum(1 for p in burst if p.keyframe)
            self._need_keyframe = False

    def _offer(self, packet: Packet) -> bool:
        """Queue ``packet`` (or drop it); True when the subscriber must be woken."""
        if self._closed is not None:
            return False
        if packet.keyframe:
            if self._queued_keyframes and len(self._queue) > 1:
                # A keyframe still unread when the next one arrives: this viewer lags a whole GOP or
                # more. Resume at the new keyframe, so its delay stays under a GOP.
                self._drop_queue()
            self._need_keyframe = False
        elif self._need_keyframe:
            self._drops += 1
            return False
        if len(self._queue) >= self._max_packets or self._bytes + packet.size > self._max_bytes:
            # Overflow: skip to the next keyframe rather than block anyone or grow.
            self._drop_queue()
            if not packet.keyframe:
                self._drops += 1
                self._need_keyframe = True
                return False
        self._queue.append(packet)
        self._bytes += packet.size
        if packet.keyframe:
            self._queued_keyframes += 1
        return self._needs_wake()

    def _end(self, reason: str) -> None:
        """Under the lock, on the loop: close with ``reason`` and resolve a waiting ``get``."""
        if self._closed is not None:
            return
        self._closed = reason
        self._sink = None
        self._queue.clear()
        self._bytes = 0
        self._queued_keyframes = 0
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)


class Feed:
    """One camera stream (``camera_id``/``stream``): GOP cache and subscribers.

    ``publish`` may be called from any thread (the ingest thread calls it for every packet); the
    rest is for the event loop the Feed was created on. The Feed outlives ingest sessions: when an
    on-demand source stops or the camera reconnects, the subscribers stay and the cache is reset
    (``reset``) so nobody starts from a stale picture. ``on_idle`` is called (on the loop) when the
    last subscriber leaves.
    """

    def __init__(
        self,
        camera_id: str,
        stream: str,
        *,
        max_packets: int = 300,
        max_bytes: int = 16 * 1024 * 1024,
        gop_max_bytes: int = 16 * 1024 * 1024,
        on_idle: Callable[[Feed], None] | None = None,
        handoff: Handoff | None = None,
    ) -> None:
        self.camera_id = camera_id
        self.stream = stream
        self._max_packets = max_packets
        self._max_bytes = max_bytes
        self._gop_max_bytes = gop_max_bytes
        self._lock = threading.Lock()
        self._handoff = handoff if handoff is not None else Handoff(asyncio.get_running_loop())
        self._gop: list[Packet] = []
        self._gop_bytes = 0
        self._gop_complete = False
        self._subscribers: list[Subscription] = []
        self._closed: str | None = None
        self.on_idle = on_idle
        self._keyframe_waiters: list[asyncio.Future[Packet]] = []
        self.info: FeedInfo | None = None
        self.packets = 0
        self.last_keyframe: Packet | None = None
        self.dropped_by_departed = 0
        """Drops of subscribers that have left (so the feed's total does not shrink)."""

    @property
    def key(self) -> str:
        return f"{self.camera_id}/{self.stream}"

    @property
    def closed(self) -> bool:
        return self._closed is not None

    @property
    def subscribers(self) -> int:
        return len(self._subscribers)

    @property
    def subscriber_drops(self) -> int:
        with self._lock:
            return self.dropped_by_departed + sum(s.drops for s in self._subscribers)

    @property
    def gop_packets(self) -> int:
        return len(self._gop) if self._gop_complete else 0

    def subscribe(self) -> Subscription:
        with self._lock:
            if self._closed is not None:
                raise FeedClosed(self._closed)
            sub = Subscription(self, self._max_packets, self._max_bytes)
            if self._gop_complete:
                sub._start(self._gop)
            self._subscribers.append(sub)
        return sub

    def publish(self, packet: Packet) -> None:
        """Hand one packet to every subscriber. Any thread; never blocks beyond a short lock."""
        wake: list[Subscription] = []
        direct: list[tuple[Subscription, Sink]] = []
        keyframe_waiters: list[asyncio.Future[Packet]] = []
        with self._lock:
            if self._closed is not None:
                return
            self.packets += 1
            if packet.keyframe:
                self._gop = [packet]
                self._gop_bytes = packet.size
                self._gop_complete = True
                self.last_keyframe = packet
                if self._keyframe_waiters:
                    keyframe_waiters, self._keyframe_waiters = self._keyframe_waiters, []
            elif self._gop_complete:
                if self._gop_bytes + packet.size > self._gop_max_bytes:
                    # A GOP too long to cache: newcomers wait for the next keyframe instead.
                    self._gop = []
                    self._gop_bytes = 0
                    self._gop_complete = False
                else:
                    self._gop.append(packet)
                    self._gop_bytes += packet.size
            for sub in self._subscribers:
                sink = sub._sink
                if sink is not None:
                    direct.append((sub, sink))
                elif sub._offer(packet):
                    wake.append(sub)
        # Sinks run outside the lock (they send): one slow sink delays this camera's next packet,
        # never another camera nor a subscriber's get().
        for sub, sink in direct:
            sub._deliver(sink, packet)
        for sub in wake:
            self._handoff.call(sub._wake)
        for waiter in keyframe_waiters:
            self._handoff.call(_resolve, waiter, packet)

    def set_info(self, info: FeedInfo) -> None:
        self.info = info

    async def keyframe(self) -> Packet:
        """The latest keyframe, waiting for one if the feed has none yet (raises FeedClosed)."""
        with self._lock:
            if self._closed is not None:
                raise FeedClosed(self._closed)
            if self.last_keyframe is not None:
                return self.last_keyframe
            waiter: asyncio.Future[Packet] = asyncio.get_running_loop().create_future()
            self._keyframe_waiters.append(waiter)
        try:
            return await waiter
        finally:
            with self._lock:
                if waiter in self._keyframe_waiters:
                    self._keyframe_waiters.remove(waiter)

    def reset(self) -> None:
        """Forget the cached GOP and keyframe (the source stopped; its picture is no longer live)."""
        with self._lock:
            self._gop = []
            self._gop_bytes = 0
            self._gop_complete = False
            self.last_keyframe = None

    def close(self, reason: str) -> None:
        """End the feed: every subscription's ``get`` raises FeedClosed(reason). Idempotent."""
        with self._lock:
            if self._closed is not None:
                return
            self._closed = reason
            subs, self._subscribers = self._subscribers, []
            for sub in subs:
                self.dropped_by_departed += sub.drops
                sub._end(reason)
            waiters, self._keyframe_waiters = self._keyframe_waiters, []
            self._gop = []
            self._gop_bytes = 0
            self._gop_complete = False
            self.last_keyframe = None
        for waiter in waiters:
            if not waiter.done():
                waiter.set_exception(FeedClosed(reason))

    def _remove(self, sub: Subscription) -> None:
        with self._lock:
            if sub not in self._subscribers:
                return
            self._subscribers.remove(sub)
            self.dropped_by_departed += sub.drops
            idle = not self._subscribers and self._closed is None
        if idle and self.on_idle is not None:
            self.on_idle(self)


def _resolve(waiter: asyncio.Future[Packet], packet: Packet) -> None:
    if not waiter.done():
        waiter.set_result(packet)
