"""One camera stream's fan-out: the GOP cache and a bounded buffer per subscriber.

Sits between ingest and the viewers (Source → **Feed** → WHEP sessions, snapshots, health). All of
it runs on the event loop: the ingest thread hands packets over with ``call_soon_threadsafe`` and
``Feed.publish`` never awaits, so a viewer can never slow the ingest or another viewer.

- GOP cache: the packets since the last keyframe. A new subscriber starts with that burst, so its
  first picture comes at once instead of at the camera's next keyframe (DESIGN decision 3).
- Bounded buffers: each subscriber queues at most ``max_packets``/``max_bytes``. Packets are shared
  immutable objects, so a queue holds references, not copies. A subscriber that overflows, or that
  is a whole GOP behind when a new keyframe arrives, drops what it has queued and resumes at a
  keyframe; every dropped packet is counted (``Subscription.drops``). aiortc's MediaRelay is not
  used: its queues are unbounded.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from ingest.packet import Packet


class FeedClosed(Exception):
    """The feed ended (camera deleted or disabled, service stopping) or the subscription was closed."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


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
    raises FeedClosed when the feed ends or after ``close()``.
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
        self._closed: str | None = None
        self.delivered = 0

    # -- the viewer's side -------------------------------------------------------------------

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
        while not self._queue:
            if self._closed is not None:
                raise FeedClosed(self._closed)
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        if self._closed is not None:
            raise FeedClosed(self._closed)
        packet = self._queue.popleft()
        self._bytes -= packet.size
        if packet.keyframe:
            self._queued_keyframes -= 1
        self.delivered += 1
        return packet

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> Packet:
        try:
            return await self.get()
        except FeedClosed:
            raise StopAsyncIteration from None

    def close(self) -> None:
        """Leave the feed. Idempotent."""
        if self._closed is not None:
            return
        self._end("subscription closed")
        self.feed._remove(self)

    # -- the feed's side ---------------------------------------------------------------------

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

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
            self._wake()

    def _offer(self, packet: Packet) -> None:
        if self._closed is not None:
            return
        if packet.keyframe:
            if self._queued_keyframes and len(self._queue) > 1:
                # A keyframe still unread when the next one arrives: this viewer lags a whole GOP or
                # more. Resume at the new keyframe, so its delay stays under a GOP.
                self._drop_queue()
            self._need_keyframe = False
        elif self._need_keyframe:
            self._drops += 1
            return
        if len(self._queue) >= self._max_packets or self._bytes + packet.size > self._max_bytes:
            # Overflow: skip to the next keyframe rather than block anyone or grow.
            self._drop_queue()
            if not packet.keyframe:
                self._drops += 1
                self._need_keyframe = True
                return
        self._queue.append(packet)
        self._bytes += packet.size
        if packet.keyframe:
            self._queued_keyframes += 1
        self._wake()

    def _end(self, reason: str) -> None:
        if self._closed is not None:
            return
        self._closed = reason
        self._queue.clear()
        self._bytes = 0
        self._queued_keyframes = 0
        self._wake()


class Feed:
    """One camera stream (``camera_id``/``stream``): GOP cache and subscribers. Loop-only.

    The Feed outlives ingest sessions: when an on-demand source stops or the camera reconnects, the
    subscribers stay and the cache is reset (``reset``) so nobody starts from a stale picture.
    ``on_idle`` is called when the last subscriber leaves; ``on_first`` when the first one joins.
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
        on_first: Callable[[Feed], None] | None = None,
    ) -> None:
        self.camera_id = camera_id
        self.stream = stream
        self._max_packets = max_packets
        self._max_bytes = max_bytes
        self._gop_max_bytes = gop_max_bytes
        self._gop: list[Packet] = []
        self._gop_bytes = 0
        self._gop_complete = False
        self._subscribers: list[Subscription] = []
        self._closed: str | None = None
        self._on_idle = on_idle
        self._on_first = on_first
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
        return self.dropped_by_departed + sum(s.drops for s in self._subscribers)

    @property
    def gop_packets(self) -> int:
        return len(self._gop) if self._gop_complete else 0

    def subscribe(self) -> Subscription:
        if self._closed is not None:
            raise FeedClosed(self._closed)
        sub = Subscription(self, self._max_packets, self._max_bytes)
        if self._gop_complete:
            sub._start(self._gop)
        self._subscribers.append(sub)
        if len(self._subscribers) == 1 and self._on_first is not None:
            self._on_first(self)
        return sub

    def publish(self, packet: Packet) -> None:
        """Hand one packet to every subscriber (called on the loop for each packet from ingest)."""
        if self._closed is not None:
            return
        self.packets += 1
        if packet.keyframe:
            self._gop = [packet]
            self._gop_bytes = packet.size
            self._gop_complete = True
            self.last_keyframe = packet
            if self._keyframe_waiters:
                waiters, self._keyframe_waiters = self._keyframe_waiters, []
                for waiter in waiters:
                    if not waiter.done():
                        waiter.set_result(packet)
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
            sub._offer(packet)

    def set_info(self, info: FeedInfo) -> None:
        self.info = info

    async def keyframe(self) -> Packet:
        """The latest keyframe, waiting for one if the feed has none yet (raises FeedClosed)."""
        if self._closed is not None:
            raise FeedClosed(self._closed)
        if self.last_keyframe is not None:
            return self.last_keyframe
        waiter: asyncio.Future[Packet] = asyncio.get_running_loop().create_future()
        self._keyframe_waiters.append(waiter)
        try:
            return await waiter
        finally:
            if waiter in self._keyframe_waiters:
                self._keyframe_waiters.remove(waiter)

    def reset(self) -> None:
        """Forget the cached GOP and keyframe (the source stopped; its picture is no longer live)."""
        self._gop = []
        self._gop_bytes = 0
        self._gop_complete = False
        self.last_keyframe = None

    def close(self, reason: str) -> None:
        """End the feed: every subscription's ``get`` raises FeedClosed(reason). Idempotent."""
        if self._closed is not None:
            return
        self._closed = reason
        subs, self._subscribers = self._subscribers, []
        for sub in subs:
            self.dropped_by_departed += sub.drops
            sub._end(reason)
        for waiter in self._keyframe_waiters:
            if not waiter.done():
                waiter.set_exception(FeedClosed(reason))
        self._keyframe_waiters = []
        self.reset()

    def _remove(self, sub: Subscription) -> None:
        if sub in self._subscribers:
            self._subscribers.remove(sub)
            self.dropped_by_departed += sub.drops
            if not self._subscribers and self._on_idle is not None and self._closed is None:
                self._on_idle(self)
