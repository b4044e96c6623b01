"""LiveHub: this process's one Redis pub/sub connection, fanned out to every ``/ws`` client.

Each ``/ws`` connection used to hold a pub/sub connection of its own, so ~100 open pages used up
redis-py's pool and the whole API failed. Now one subscriber task listens on the wall channel
(wall and preset changes from every worker) and copies each message into every registered client's
bounded queue. It also tells the clients when Redis goes away and comes back (``redis`` events), so a
page can say so and re-read what it may have missed.

The hub admits the sockets too: ``ws.max_connections`` in total (counted from the handshake, before
authentication) and ``ws.max_connections_per_user`` once the user is known.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections import Counter, deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Literal

import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError

from videohub.aio import CloseOnce, Part, TaskOwner, checkpoint
from videohub.errors import LiveFull
from videohub.settings.store import WsSettings
from videohub.store import OUTAGE, OutageLog, Store
from videohub.walls import CHANNEL

log = logging.getLogger(__name__)

RedisState = Literal["ok", "unreachable"]

BACKOFF_INITIAL = 0.2
BACKOFF_MAX = 2.0
PING_AFTER_IDLE = 5.0
"""Seconds of silence after which the subscriber pings, so a connection lost without a reset is noticed."""


@dataclass(frozen=True)
class LiveEvent:
    """A message published on the channel (``kind="message"``), or Redis's new state (``kind="redis"``)."""

    kind: Literal["message", "redis"]
    data: str


class LiveClient:
    """One admitted ``/ws`` socket: its user (once known) and its bounded queue of events.

    A client that does not keep up loses its oldest events (counted), never blocks the hub.
    """

    def __init__(self, size: int) -> None:
        self.user: str | None = None
        self.dropped = 0
        self._events: deque[LiveEvent] = deque()
        self._size = size
        self._ready = asyncio.Event()

    def put(self, event: LiveEvent) -> None:
        if len(self._events) >= self._size:
            self._events.popleft()
            self.dropped += 1
        self._events.append(event)
        self._ready.set()

    async def get(self) -> LiveEvent:
        while not self._events:
            self._ready.clear()
            await self._ready.wait()
        return self._events.popleft()


class LiveHub(Part):
    """Owns the subscriber task (``async with LiveHub(...)``) and the registry of /ws clients."""

    def __init__(
        self,
        store: Store,
        settings: WsSettings,
        *,
        channel: str = CHANNEL,
        buffer: int = 256,
        ping_after: float = PING_AFTER_IDLE,
    ) -> None:
        self.store = store
        self.settings = settings
        self.channel = channel
        self.buffer = buffer
        self.ping_after = ping_after
        self.state: RedisState = "ok"
        self.subscribed = asyncio.Event()
        self._clients: set[LiveClient] = set()
        self._listening: set[LiveClient] = set()
        self._per_user: Counter[str] = Counter()
        self._outage = OutageLog(log, "live events")
        self._client: aioredis.Redis | None = None
        self._tasks = TaskOwner("live")
        self._closing = CloseOnce()

    # -- lifecycle ----------------------------------------------------------------------------

    async def start(self) -> None:
        if self._client is not None or self._closing.started:
            return
        self._client = self.store.dedicated()
        await self._tasks.start()
        self._tasks.spawn(self._run(), name="live-hub")

    async def close(self) -> None:
        """Stop listening. Safe to call twice; a concurrent second caller waits for the first."""
        await self._closing.run(self._close)

    async def _close(self) -> None:
        await self._tasks.close()
        if self._client is not None:
            try:
                await self._client.aclose()
            except (RedisError, OSError):
                pass

    # -- admission ----------------------------------------------------------------------------

    @property
    def connections(self) -> int:
        return len(self._clients)

    @contextmanager
    def admit(self) -> Iterator[LiveClient]:
        """Room for one more socket (raises LiveFull("total")); given back when the block ends."""
        if len(self._clients) >= self.settings.max_connections:
            raise LiveFull("total")
        client = LiveClient(self.buffer)
        self._clients.add(client)
        try:
            yield client
        finally:
            self._clients.discard(client)
            self._listening.discard(client)
            if client.user is not None:
                self._per_user[client.user] -= 1
                if self._per_user[client.user] <= 0:
                    del self._per_user[client.user]

    def join(self, client: LiveClient, user: str) -> None:
        """The socket authenticated as ``user``: count it (raises LiveFull("user")) and start its events."""
        if self._per_user[user] >= self.settings.max_connections_per_user:
            raise LiveFull("user")
        self._per_user[user] += 1
        client.user = user
        self._listening.add(client)
        if self.state == "unreachable":
            client.put(LiveEvent("redis", "unreachable"))

    # -- the subscriber -----------------------------------------------------------------------

    def _broadcast(self, event: LiveEvent) -> None:
        for client in list(self._listening):
            client.put(event)

    def _set_state(self, state: RedisState) -> None:
        if state != self.state:
            self.state = state
            self._broadcast(LiveEvent("redis", state))

    async def _run(self) -> None:
        delay = BACKOFF_INITIAL
        while True:
            checkpoint()
            try:
                await self._listen()  # returns only by raising
            except OUTAGE as exc:
                self._outage.failed(exc)
            except Exception:
                log.exception("live events: the subscriber failed; subscribing again")
            self._set_state("unreachable")
            if self.subscribed.is_set():  # it had worked: the next attempt comes soon
                delay = BACKOFF_INITIAL
            self.subscribed.clear()
            await asyncio.sleep(delay * random.uniform(0.75, 1.25))
            delay = min(delay * 2, BACKOFF_MAX)

    async def _listen(self) -> None:
        assert self._client is not None
        # Every reply counts as a sign of life. redis-py hands a decoded PONG back as a message of type
        # "P" (it expects bytes), which ignore_subscribe_messages would swallow: keep them all.
        pubsub = self._client.pubsub(ignore_subscribe_messages=False)
        try:
            await pubsub.subscribe(self.channel)
            self.subscribed.set()
            self._outage.ok()
            self._set_state("ok")
            loop = asyncio.get_running_loop()
            heard, pinged = loop.time(), False
            poll = min(1.0, self.ping_after)
            while True:
                checkpoint()
                message = await pubsub.get_message(timeout=poll)
                now = loop.time()
                if message is not None:  # a message, a subscribe confirmation or the answer to our ping
                    heard, pinged = now, False
                    if message.get("type") == "message":
                        self._broadcast(LiveEvent("message", str(message["data"])))
                    continue
                if now - heard >= 2 * self.ping_after:
                    raise RedisConnectionError("the pub/sub connection does not answer")
                if now - heard >= self.ping_after and not pinged:
                    await pubsub.ping()
                    pinged = True
        finally:
            try:
                await pubsub.aclose()
            except (RedisError, OSError):
                pass
