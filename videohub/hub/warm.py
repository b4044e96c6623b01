"""Warm-up holds (issue 16, tours and presets without black): keep a feed pulled for a few seconds.

Beside the viewers on a Feed (registry → FeedManager → Feed ← **warm hold**). A wall that is about to
show a camera — the next step of a tour, a preset an operator is about to recall — asks for a hold a
GOP plus the open time ahead. The hold is a Feed subscription like a viewer's, so an ``on_demand``
stream starts (or stays up) and its GOP cache is full when the players arrive: their WHEP answer
then comes at once, instead of after the camera's next keyframe. A hold costs no event-loop work
per packet: once its start burst is read, the ingest thread hands each packet to a no-op sink.

Bounded: a hold lasts at most ``MAX_SECONDS``; asking again for the same camera stream extends it
(one subscription per user, camera and stream); a user holds at most ``MAX_PER_USER`` at once (429)
and the worker ``MAX_TOTAL`` (503). A hold ends at its time, when released, or with its feed.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Protocol

from ingest.packet import Packet
from videohub.aio import CloseOnce, Part, TaskOwner
from videohub.errors import FeedClosed, RateLimited, Unavailable
from videohub.hub.feed import Subscription
from videohub.models import Camera

log = logging.getLogger(__name__)

MAX_SECONDS = 30.0
"""Longest hold: a GOP (up to 10 s) plus the open time, with room for a 20 s look-ahead."""
MAX_PER_USER = 32
"""Holds one user (one wall's pages: two 16-tile steps) may have at once."""
MAX_TOTAL = 1024
"""Holds on one worker at once."""


class Subscribing(Protocol):
    """What holds need of the Feed hub (``videohub.hub.manager.FeedManager`` provides it)."""

    async def subscribe(self, camera: str | Camera, stream: str = "main") -> Subscription: ...


def _discard(packet: Packet) -> bool:
    """The direct sink of a hold: the packet has done its work (it is in the feed's GOP cache)."""
    return True


@dataclass(eq=False)
class WarmHold:
    user: str
    camera_id: str
    stream: str
    subscription: Subscription
    until: float
    """Wall-clock end (Unix seconds)."""
    timer: asyncio.TimerHandle | None = None


class WarmHolds(Part):
    """Every warm-up hold of this worker, keyed by (user, camera, stream). ``close()`` ends them all.

    A Part: entered after the Feed hub and left before it; each hold's reader runs in its TaskOwner."""

    def __init__(self, hub: Subscribing) -> None:
        self.hub = hub
        self._holds: dict[tuple[str, str, str], WarmHold] = {}
        self._tasks = TaskOwner("warm-holds")
        self._closing = CloseOnce()

    @property
    def _closed(self) -> bool:
        return self._closing.started

    async def start(self) -> None:
        await self._tasks.start()

    def __len__(self) -> int:
        return len(self._holds)

    def held(self, camera_id: str, stream: str) -> int:
        """Holds on one camera stream (any user)."""
        return sum(1 for (_, cid, s) in self._holds if cid == camera_id and s == stream)

    async def hold(self, user: str, camera: Camera, stream: str, seconds: float) -> WarmHold:
        """Hold ``camera``'s ``stream`` for ``seconds`` (at most MAX_SECONDS), starting it if needed.

        Raises RateLimited (the user's holds are full), Unavailable (the worker's are, or the hub is
        stopping) and the hub's NotFound for a camera or stream it does not know."""
        if self._closed or not self._tasks.started:
            raise Unavailable("the feed hub is not running")
        seconds = min(max(seconds, 1.0), MAX_SECONDS)
        key = (user, camera.id, stream)
        found = self._holds.get(key)
        if found is not None and not found.subscription.closed:
            self._arm(found, seconds)
            return found
        if sum(1 for k in self._holds if k[0] == user) >= MAX_PER_USER:
            raise RateLimited(f"at most {MAX_PER_USER} warm-up holds per user at once", retry_after=5)
        if len(self._holds) >= MAX_TOTAL:
            raise Unavailable(f"this worker already keeps {MAX_TOTAL} warm-up holds", retry_after=5)
        subscription = await self.hub.subscribe(camera, stream)
        hold = WarmHold(user, camera.id, stream, subscription, 0.0)
        previous = self._holds.pop(key, None)
        if previous is not None:
            self._end(previous)
        self._holds[key] = hold
        self._arm(hold, seconds)
        self._tasks.spawn(self._go_direct(hold), name=f"warm-{camera.id}-{stream}")
        return hold

    def release(self, user: str, camera_id: str, stream: str) -> bool:
        hold = self._holds.pop((user, camera_id, stream), None)
        if hold is None:
            return False
        self._end(hold)
        return True

    async def close(self) -> None:
        """End every hold. Safe to call twice; a concurrent second caller waits for the first."""
        await self._closing.run(self._close)

    async def _close(self) -> None:
        await self._tasks.close()
        for hold in list(self._holds.values()):
            self._end(hold)
        self._holds.clear()

    def _arm(self, hold: WarmHold, seconds: float) -> None:
        if hold.timer is not None:
            hold.timer.cancel()
        hold.until = time.time() + seconds
        hold.timer = asyncio.get_running_loop().call_later(seconds, self._expire, hold)

    def _expire(self, hold: WarmHold) -> None:
        key = (hold.user, hold.camera_id, hold.stream)
        if self._holds.get(key) is hold:
            del self._holds[key]
        self._end(hold)

    def _end(self, hold: WarmHold) -> None:
        if hold.timer is not None:
            hold.timer.cancel()
            hold.timer = None
        hold.subscription.close()

    async def _go_direct(self, hold: WarmHold) -> None:
        """Read the start burst, then let the ingest thread drop packets into the no-op sink."""
        subscription = hold.subscription
        try:
            while not subscription.direct(_discard):
                await subscription.get()
            await subscription.get()  # returns only when the feed or the hold ends
        except FeedClosed:
            pass
        key = (hold.user, hold.camera_id, hold.stream)
        if self._holds.get(key) is hold:  # the feed ended (camera deleted, disabled): forget the hold
            del self._holds[key]
            self._end(hold)
