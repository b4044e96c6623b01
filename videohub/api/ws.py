"""``/ws``: live events for the browser — wall changes, alerts and health transitions.

The browser cannot set headers on a WebSocket and a token in the URL would reach access logs, so
the first client message authenticates: ``{"type":"auth","token":...}``. Then
``{"type":"subscribe","topics":["wall:<id>","alerts","health","presets"]}`` (and ``unsubscribe``). The server
answers ``{"type":"ready","user":...}`` and pushes ``{"type":"wall","wall":{...}}`` (the current wall
on subscribe, then every change from any worker via Redis pub/sub), ``{"type":"alert",...}`` and
``{"type":"health",...}`` (a line admin only its line's) and ``{"type":"presets"}`` (the preset list
changed: reload it). A line admin's walls hide other lines' cameras, as over HTTP. Each connection
has a bounded outbox: a slow socket loses its oldest events (counted), never blocks the others. The
socket closes with 4401 when the login of its token ends (logout, expiry, revocation; a token renewed
by refresh carries the socket on).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections import deque
from typing import Any

from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from redis.asyncio.client import PubSub
from redis.exceptions import RedisError

from videohub.aio import checkpoint
from videohub.models import User
from videohub.policy import can_see_line, visible_lines
from videohub.services import Services
from videohub.walls import CHANNEL, Wall, WallStore, visible_wall
from videohub.walls.models import WALL_ID

log = logging.getLogger(__name__)
router = APIRouter()

AUTH_TIMEOUT = 10.0
OUTBOX = 256
TOKEN_CHECK_SECONDS = 2.0
MAX_WALL_TOPICS = 16
CLOSE_UNAUTHORIZED = 4401


class _Disconnected(Exception):
    """The client went away; ends the connection's task group."""


class LiveConnection:
    """One authenticated /ws client: its topics, its bounded outbox and the tasks that fill it.

    Sits between the service's live sources (wall pub/sub, ``svc.alerts.live``, ``svc.health.live``)
    and one browser. Owns the outbox and every task it starts; all end when the socket closes.
    """

    def __init__(self, websocket: WebSocket, svc: Services, user: User, token: str) -> None:
        self.ws = websocket
        self.svc = svc
        self.user = user
        self.token = token
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
        # Listen on the wall channel before any subscribe is read, so no change falls between
        # sending a wall's current state and hearing its next change.
        pubsub = self.svc.store.redis.pubsub(ignore_subscribe_messages=True)
        try:
            await pubsub.subscribe(CHANNEL)
            async with asyncio.TaskGroup() as tg:
                self._tg = tg
                tg.create_task(self._send_loop())
                tg.create_task(self._read_loop())
                tg.create_task(self._wall_loop(pubsub))
                tg.create_task(self._token_loop())
        except* _Disconnected:
            pass
        finally:
            with contextlib.suppress(RedisError, OSError):
                await pubsub.aclose()
            if self.dropped:
                log.info("ws %s: %d events dropped (slow socket)", self.user.username, self.dropped)

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
            wall = await WallStore(self.svc.store.redis).get(wall_id)
            self.push({"type": "wall", "wall": await self._visible(wall.model_dump(mode="json"))})
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
        source = self.svc.alerts if topic == "alerts" else self.svc.health
        if source is None or getattr(source, "live", None) is None:
            return  # the part is not running in this service: nothing to push
        self._started.add(topic)
        loop = self._alert_loop(source.live) if topic == "alerts" else self._health_loop(source.live)
        self._tg.create_task(loop)

    async def _wall_loop(self, pubsub: PubSub) -> None:
        while True:
            checkpoint()
            try:
                message = await pubsub.get_message(timeout=5.0)
            except (RedisError, OSError) as exc:
                log.warning("ws: wall channel unavailable: %s", exc)
                await asyncio.sleep(1.0)
                continue
            if message is None or message.get("type") != "message":
                continue
            try:
                wall = json.loads(message["data"])
            except ValueError:
                continue
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

    async def _alert_loop(self, live: Any) -> None:
        async with live.subscribe() as sub:
            async for event in sub:
                if "alerts" in self.topics and can_see_line(self.user, event.alert.line):
                    self.push({"type": "alert", **event.body()})

    async def _line_of(self, camera_id: str) -> str | None:
        if camera_id not in self._lines:
            camera = await self.svc.registry.get(camera_id)
            self._lines[camera_id] = camera.line if camera else None
        return self._lines[camera_id]

    async def _health_loop(self, live: Any) -> None:
        async with live.subscribe() as sub:
            async for transition in sub:
                if "health" not in self.topics:
                    continue
                line = await self._line_of(transition.camera)
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


async def _authenticate(websocket: WebSocket, svc: Services) -> tuple[User, str] | None:
    try:
        raw = await asyncio.wait_for(websocket.receive_text(), AUTH_TIMEOUT)
        message = json.loads(raw)
    except (TimeoutError, WebSocketDisconnect, RuntimeError, ValueError):
        return None
    token = message.get("token") if isinstance(message, dict) and message.get("type") == "auth" else None
    if not isinstance(token, str) or not token:
        return None
    user = await svc.users.user_for_token(token)
    return (user, token) if user is not None else None


@router.websocket("/ws")
async def live_events(websocket: WebSocket) -> None:
    svc: Services = websocket.app.state.services
    await websocket.accept()
    auth = await _authenticate(websocket, svc)
    if auth is None:
        with contextlib.suppress(RuntimeError, WebSocketDisconnect):
            await websocket.send_text(json.dumps({"type": "error", "status": 401, "detail": "auth first"}))
            await websocket.close(CLOSE_UNAUTHORIZED, "unauthorized")
        return
    user, token = auth
    connection = LiveConnection(websocket, svc, user, token)
    connection.push({"type": "ready", "user": user.model_dump(mode="json")})
    await connection.run()
    with contextlib.suppress(RuntimeError, WebSocketDisconnect):
        await websocket.close()
