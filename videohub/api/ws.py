"""``/ws``: live events for the browser — wall changes, alerts and health transitions.

The browser cannot set headers on a WebSocket and a token in the URL would reach access logs, so
the first client message authenticates: ``{"type":"auth","token":...}``. Then
``{"type":"subscribe","topics":["wall:<id>","alerts","health","presets"]}`` (and ``unsubscribe``). The server
answers ``{"type":"ready","user":...}`` and pushes ``{"type":"wall","wall":{...}}`` (the current wall
on subscribe, then every change from any worker via Redis pub/sub), ``{"type":"alert",...}`` and
``{"type":"health",...}`` (a line admin only its line's) and ``{"type":"presets"}`` (the preset list
changed: reload it). Each connection has a bounded outbox: a
slow socket loses its oldest events (counted), never blocks the others. A line admin's walls hide
other lines' cameras, as over HTTP. The socket closes with 4401 when the login of its token ends
(logout, expiry, revocation; a token renewed by refresh carries the socket on).

Every /ws socket of the process is served by one Redis pub/sub connection (``videohub.live.LiveHub``).
When Redis becomes unreachable the socket stays open and gets ``{"type":"degraded","redis":"unreachable"}``;
when it is back, ``{"type":"degraded","redis":"ok"}`` and then the current state of every wall it
follows (changes made meanwhile are not lost). A subscribe that cannot read its wall during an outage
answers ``{"type":"error","status":503,...}``; the wall follows once Redis is back.

Limits (``ws.*`` settings) and close codes:

- 1013 (try again later): the process has ``ws.max_connections`` sockets open, or Redis is
  unreachable while the socket authenticates.
- 4429: the user has ``ws.max_connections_per_user`` sockets open.
- 1009 (message too big): a client message over ``ws.max_message_bytes`` (4 KiB).
- 1008 (policy violation): more than ``ws.max_messages_per_second`` messages in a second (bursts up
  to the same number are fine).
- 4401: no valid auth message first (within 10 s), or the token expired or was revoked.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import APIRouter, WebSocket, WebSocketDisconnect

from videohub.aio import checkpoint
from videohub.alerts.live import LiveAlerts, StreamFanout
from videohub.errors import LiveFull
from videohub.health.state import Transition
from videohub.live import LiveClient, LiveEvent
from videohub.models import User
from videohub.policy import can_see_line, visible_lines
from videohub.services import Services
from videohub.settings import WsSettings
from videohub.store import OUTAGE
from videohub.walls import Wall, WallStore, visible_wall
from videohub.walls.models import WALL_ID

log = logging.getLogger(__name__)
router = APIRouter()

AUTH_TIMEOUT = 10.0
OUTBOX = 256
TOKEN_CHECK_SECONDS = 2.0
MAX_WALL_TOPICS = 16
CLOSE_UNAUTHORIZED = 4401
CLOSE_TOO_MANY_FOR_USER = 4429
CLOSE_TRY_AGAIN_LATER = 1013
CLOSE_TOO_BIG = 1009
CLOSE_POLICY = 1008
OUTAGE_RETRY_SECONDS = 1.0


class _Disconnected(Exception):
    """The client went away; ends the connection's task group."""


class MessageGate:
    """The size and rate bounds of what one client sends: a token bucket of ``max_messages_per_second``.

    ``check`` answers None for a message within bounds, else the close code and reason.
    """

    def __init__(self, settings: WsSettings, clock: Callable[[], float] = time.monotonic) -> None:
        self.max_bytes = settings.max_message_bytes
        self.rate = float(settings.max_messages_per_second)
        self.clock = clock
        self._tokens = self.rate
        self._at = clock()

    def check(self, raw: str) -> tuple[int, str] | None:
        # A character takes one to four bytes: only a text in between needs encoding to be sure.
        size = len(raw) if 4 * len(raw) <= self.max_bytes else len(raw.encode())
        if size > self.max_bytes:
            return CLOSE_TOO_BIG, f"messages are at most {self.max_bytes} bytes"
        now = self.clock()
        self._tokens = min(self.rate, self._tokens + (now - self._at) * self.rate)
        self._at = now
        if self._tokens < 1.0:
            return CLOSE_POLICY, f"more than {int(self.rate)} messages per second"
        self._tokens -= 1.0
        return None


class LiveConnection:
    """One authenticated /ws client: its topics, its bounded outbox and the tasks that fill it.

    Sits between the service's live sources (wall pub/sub, ``svc.alerts.live``, ``svc.health.live``)
    and one browser. Owns the outbox and every task it starts; all end when the socket closes.
    """

    def __init__(
        self,
        websocket: WebSocket,
        svc: Services,
        user: User,
        token: str,
        client: LiveClient | None = None,
        gate: MessageGate | None = None,
    ) -> None:
        self.ws = websocket
        self.svc = svc
        self.user = user
        self.token = token
        self.client = client or LiveClient(OUTBOX)
        self.gate = gate or MessageGate(WsSettings())
        self.walls: set[str] = set()
        self.topics: set[str] = set()
        self.outbox: deque[str] = deque()
        self.wakeup = asyncio.Event()
        self.dropped = 0
        self._lines: dict[str, str | None] = {}
        self._tg: asyncio.TaskGroup | None = None
        self._started: set[str] = set()

    def push(self, message: dict[str, Any]) -> None:
        if len(self.outbox) >= OUTBOX:
            self.outbox.popleft()
            self.dropped += 1
        self.outbox.append(json.dumps(message, ensure_ascii=False, default=str))
        self.wakeup.set()

    async def run(self) -> None:
        # The client joined the live hub before this runs: every wall change published from now on
        # is in its queue, so none falls between sending a wall's current state and its next change.
        try:
            async with asyncio.TaskGroup() as tg:
                self._tg = tg
                tg.create_task(self._send_loop())
                tg.create_task(self._read_loop())
                tg.create_task(self._event_loop())
                tg.create_task(self._through_outages(self._token_loop))
        except* _Disconnected:
            pass
        finally:
            dropped = self.dropped + self.client.dropped
            if dropped:
                log.info("ws %s: %d events dropped (slow socket)", self.user.username, dropped)

    async def _through_outages(self, loop: Callable[[], Awaitable[None]]) -> None:
        """Run a loop that reads Redis; an outage pauses it (the client is told) instead of closing."""
        while True:
            checkpoint()
            try:
                await loop()
                return
            except OUTAGE:
                await asyncio.sleep(OUTAGE_RETRY_SECONDS)

    async def _close(self, code: int, reason: str) -> None:
        with contextlib.suppress(RuntimeError, WebSocketDisconnect, OSError):
            await self.ws.close(code, reason)
        raise _Disconnected

    async def _send_loop(self) -> None:
        while True:
            await self.wakeup.wait()
            self.wakeup.clear()
            while self.outbox:
                try:
                    await self.ws.send_text(self.outbox.popleft())
                except (WebSocketDisconnect, RuntimeError, OSError):
                    raise _Disconnected from None

    async def _read_loop(self) -> None:
        while True:
            try:
                raw = await self.ws.receive_text()
            except (WebSocketDisconnect, RuntimeError):
                raise _Disconnected from None
            problem = self.gate.check(raw)
            if problem is not None:
                await self._close(*problem)
            try:
                message = json.loads(raw)
            except ValueError:
                self.push({"type": "error", "status": 400, "detail": "messages are JSON objects"})
                continue
            if not isinstance(message, dict):
                continue
            kind = message.get("type")
            topics = message.get("topics")
            if kind in ("subscribe", "unsubscribe") and isinstance(topics, list):
                for topic in topics:
                    if isinstance(topic, str):
                        await (self._subscribe(topic) if kind == "subscribe" else self._unsubscribe(topic))
            elif kind == "ping":
                self.push({"type": "pong"})

    async def _subscribe(self, topic: str) -> None:
        if topic.startswith("wall:"):
            wall_id = topic.removeprefix("wall:")
            if not WALL_ID.match(wall_id) or len(self.walls) >= MAX_WALL_TOPICS:
                self.push({"type": "error", "status": 422, "detail": f"bad wall topic {topic!r}"})
                return
            self.walls.add(wall_id)
            await self._send_wall(wall_id)
        elif topic in ("alerts", "health"):
            self.topics.add(topic)
            self._start(topic)
        elif topic == "presets":  # "the preset list changed": consoles reload it
            self.topics.add(topic)
        else:
            self.push({"type": "error", "status": 422, "detail": f"unknown topic {topic!r}"})

    async def _unsubscribe(self, topic: str) -> None:
        self.walls.discard(topic.removeprefix("wall:"))
        self.topics.discard(topic)

    def _start(self, topic: str) -> None:
        if topic in self._started or self._tg is None:
            return
        alerts, health = self.svc.alerts, self.svc.health
        if topic == "alerts" and alerts is not None:
            self._started.add(topic)
            self._tg.create_task(self._alert_loop(alerts.live))
        elif topic == "health" and health is not None:
            self._started.add(topic)
            self._tg.create_task(self._health_loop(health.live))
        # otherwise the part is not running in this service: nothing to push

    async def _send_wall(self, wall_id: str) -> bool:
        """Push the wall's current state; False (and a 503 error event) while Redis is unreachable."""
        try:
            wall = await WallStore(self.svc.store.redis).get(wall_id)
        except OUTAGE:
            detail = f"wall {wall_id!r} cannot be read now (the store is unreachable); it follows once back"
            self.push({"type": "error", "status": 503, "detail": detail})
            return False
        self.push({"type": "wall", "wall": await self._visible(wall.model_dump(mode="json"))})
        return True

    async def _event_loop(self) -> None:
        while True:
            checkpoint()
            event = await self.client.get()
            if event.kind == "redis":
                self.push({"type": "degraded", "redis": event.data})
                if event.data == "ok":
                    # Changes published while the hub was away are lost: send the current state.
                    for wall_id in sorted(self.walls):
                        if not await self._send_wall(wall_id):
                            break
                continue
            await self._on_message(event)

    async def _on_message(self, event: LiveEvent) -> None:
        try:
            wall = json.loads(event.data)
        except ValueError:
            return
        if not isinstance(wall, dict):
            return
        if wall.get("kind") == "presets":
            if "presets" in self.topics:
                self.push({"type": "presets"})
        elif wall.get("id") in self.walls:
            self.push({"type": "wall", "wall": await self._visible(wall)})

    async def _visible(self, wall: dict[str, Any]) -> dict[str, Any]:
        # A line admin gets other lines' cameras hidden, as over HTTP (videohub.walls.visibility).
        if visible_lines(self.user) is None:
            return wall
        view = await visible_wall(self.user, Wall.model_validate(wall), self.svc.registry)
        return view.model_dump(mode="json")

    async def _alert_loop(self, live: LiveAlerts) -> None:
        async with live.subscribe() as sub:
            async for event in sub:
                if "alerts" in self.topics and can_see_line(self.user, event.alert.line):
                    self.push({"type": "alert", **event.body()})

    async def _line_of(self, camera_id: str) -> str | None:
        if camera_id not in self._lines:
            camera = await self.svc.registry.get(camera_id)
            self._lines[camera_id] = camera.line if camera else None
        return self._lines[camera_id]

    async def _health_loop(self, live: StreamFanout[Transition]) -> None:
        async with live.subscribe() as sub:
            async for transition in sub:
                if "health" not in self.topics:
                    continue
                try:
                    line = await self._line_of(transition.camera)
                except OUTAGE:
                    continue  # whose line it is cannot be checked now: not sent
                if line is not None and can_see_line(self.user, line):
                    self.push({"type": "health", **transition.as_dict()})

    async def _token_loop(self) -> None:
        # The socket lives as long as its token's login: a renewed token carries it on.
        found = await self.svc.users.authenticate(self.token)
        while True:
            checkpoint()
            await asyncio.sleep(TOKEN_CHECK_SECONDS)
            if found is None or not await self.svc.users.alive([found[1]]):
                with contextlib.suppress(RuntimeError, WebSocketDisconnect):
                    await self.ws.close(CLOSE_UNAUTHORIZED, "token expired or revoked")
                raise _Disconnected


async def _authenticate(websocket: WebSocket, svc: Services, gate: MessageGate) -> tuple[User, str] | None:
    """The user of the first message's token; None for anything else.

    Raises OUTAGE if Redis is away, and _Disconnected once it closed a socket that broke the bounds.
    """
    try:
        raw = await asyncio.wait_for(websocket.receive_text(), AUTH_TIMEOUT)
    except (TimeoutError, WebSocketDisconnect, RuntimeError):
        return None
    problem = gate.check(raw)
    if problem is not None:
        await _close(websocket, *problem)
        raise _Disconnected
    try:
        message = json.loads(raw)
    except ValueError:
        return None
    token = message.get("token") if isinstance(message, dict) and message.get("type") == "auth" else None
    if not isinstance(token, str) or not token:
        return None
    user = await svc.users.user_for_token(token)
    return (user, token) if user is not None else None


async def _close(websocket: WebSocket, code: int, reason: str, error: dict[str, Any] | None = None) -> None:
    with contextlib.suppress(RuntimeError, WebSocketDisconnect, OSError):
        if error is not None:
            await websocket.send_text(json.dumps(error))
        await websocket.close(code, reason)


@router.websocket("/ws")
async def live_events(websocket: WebSocket) -> None:
    svc: Services = websocket.app.state.services
    live = svc.live
    await websocket.accept()
    try:
        with live.admit() as client:
            gate = MessageGate(svc.settings.ws)
            try:
                auth = await _authenticate(websocket, svc, gate)
            except OUTAGE:
                error = {"type": "error", "status": 503, "detail": "the store is unreachable; retry shortly"}
                await _close(websocket, CLOSE_TRY_AGAIN_LATER, "try again later", error)
                return
            except _Disconnected:
                return
            if auth is None:
                error = {"type": "error", "status": 401, "detail": "auth first"}
                await _close(websocket, CLOSE_UNAUTHORIZED, "unauthorized", error)
                return
            user, token = auth
            live.join(client, user.username)
            connection = LiveConnection(websocket, svc, user, token, client, gate)
            connection.push({"type": "ready", "user": user.model_dump(mode="json")})
            await connection.run()
    except LiveFull as full:
        if full.scope == "user":
            error = {"type": "error", "status": 429, "detail": "too many live connections for this user"}
            await _close(websocket, CLOSE_TOO_MANY_FOR_USER, "too many connections for this user", error)
        else:
            await _close(websocket, CLOSE_TRY_AGAIN_LATER, "too many connections; try again later")
        return
    with contextlib.suppress(RuntimeError, WebSocketDisconnect):
        await websocket.close()
