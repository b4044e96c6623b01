"""The camera registry in Redis, and the change feed that ingest follows.

Keys:
    vh:cam:<id>        JSON of the Camera (URLs without userinfo, no password)
    vh:cred:<id>       hash {username, password}: credentials stored apart, never returned
    vh:cams:index      hash id -> compact JSON [line, area, enabled, name, mode] used to filter and
                       page 10,000 cameras without reading every record
    vh:cams:version    counter bumped by every write; each process keeps the parsed index until it moves
    vh:registry        pub/sub channel of {"op": "put"|"delete", "id": ...}

Who may do what is decided by ``videohub.policy`` in the API layer; this module checks data only.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

import redis.asyncio as aioredis
from pydantic import SecretStr

from videohub.errors import Conflict, InvalidField, NotFound
from videohub.models import (
    TEST_SCHEMES,
    Camera,
    CameraCreate,
    CameraPage,
    CameraPatch,
    Credentials,
    CredentialsIn,
    Streams,
    split_userinfo,
)
from videohub.store import key

INDEX = key("cams", "index")
VERSION = key("cams", "version")
CHANNEL = key("registry")


@dataclass(frozen=True, slots=True)
class RegistryChange:
    op: Literal["put", "delete"]
    id: str


@dataclass(frozen=True, slots=True)
class CameraFilter:
    line: str | None = None
    lines: frozenset[str] | None = None
    """Restrict to these lines (a line_admin's view); None means all."""
    area: str | None = None
    q: str | None = None
    enabled: bool | None = None
    mode: str | None = None


def _split_stream_credentials(streams: Streams) -> tuple[Streams, CredentialsIn | None]:
    """Move userinfo out of the stream URLs. Conflicting userinfo in main and sub is an error."""
    found: CredentialsIn | None = None
    found_in = ""
    cleaned: dict[str, Any] = {}
    for name in ("main", "sub"):
        spec = getattr(streams, name)
        if spec is None:
            continue
        url, user, password = split_userinfo(spec.url)
        if user is not None:
            creds = CredentialsIn(username=user, password=SecretStr(password or ""))
            if found is not None and (
                found.username != creds.username
                or found.password.get_secret_value() != creds.password.get_secret_value()
            ):
                raise InvalidField(
                    ("body", "streams", name, "url"),
                    f"credentials in this URL differ from those in streams.{found_in}.url",
                )
            found, found_in = creds, name
        cleaned[name] = spec.model_copy(update={"url": url})
    return Streams(**cleaned), found


class CameraRegistry:
    """Cameras of every line, stored in Redis; publishes each change for the Feed hub."""

    def __init__(self, redis: aioredis.Redis, line_ids: list[str], *, allow_test_sources: bool) -> None:
        self._redis = redis
        self._line_ids = line_ids
        self._allow_test_sources = allow_test_sources
        self._index_cache: tuple[str | None, list[tuple[str, str, str, bool, str, str]]] | None = None

    # -- validation ------------------------------------------------------------------------------
    def _check_line(self, line: str) -> None:
        if line not in self._line_ids:
            raise InvalidField(("body", "line"), f"unknown line {line!r}; known: {', '.join(self._line_ids)}")

    def _check_streams(self, streams: Streams) -> None:
        if self._allow_test_sources:
            return
        for name in ("main", "sub"):
            spec = getattr(streams, name)
            if spec is not None and spec.url.split(":", 1)[0].lower() in TEST_SCHEMES:
                raise InvalidField(
                    ("body", "streams", name, "url"),
                    "file:// sources are only accepted when demo.allow_test_sources is on",
                )

    # -- reads -----------------------------------------------------------------------------------
    async def get(self, camera_id: str) -> Camera | None:
        raw = await self._redis.get(key("cam", camera_id))
        return Camera.model_validate_json(raw) if raw else None

    async def require(self, camera_id: str) -> Camera:
        camera = await self.get(camera_id)
        if camera is None:
            raise NotFound(f"camera {camera_id!r} not found")
        return camera

    async def all(self) -> list[Camera]:
        ids = sorted(await self._redis.hkeys(INDEX))
        return await self._load(ids)

    async def _load(self, ids: list[str]) -> list[Camera]:
        cameras: list[Camera] = []
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            raws = await self._redis.mget([key("cam", i) for i in chunk])
            cameras.extend(Camera.model_validate_json(raw) for raw in raws if raw)
        return cameras

    async def credentials(self, camera_id: str) -> Credentials | None:
        data = await self._redis.hgetall(key("cred", camera_id))
        if not data:
            return None
        return Credentials(username=data["username"], password=SecretStr(data.get("password", "")))

    async def search(self, flt: CameraFilter, limit: int = 50, offset: int = 0) -> CameraPage:
        q = flt.q.casefold() if flt.q else None
        matched: list[tuple[str, str]] = []
        for camera_id, line, area, enabled, name, mode in await self._index():
            if flt.lines is not None and line not in flt.lines:
                continue
            if flt.line is not None and line != flt.line:
                continue
            if flt.area is not None and area != flt.area:
                continue
            if flt.enabled is not None and enabled != flt.enabled:
                continue
            if flt.mode is not None and mode != flt.mode:
                continue
            if q is not None and q not in name and q not in camera_id:
                continue
            matched.append((line, camera_id))
        matched.sort()
        page_ids = [camera_id for _, camera_id in matched[offset : offset + limit]]
        return CameraPage(items=await self._load(page_ids), total=len(matched), limit=limit, offset=offset)

    async def _index(self) -> list[tuple[str, str, str, bool, str, str]]:
        """The parsed index (id, line, area, enabled, name, folded name), re-read only after a write."""
        version = await self._redis.get(VERSION)
        if self._index_cache is not None and self._index_cache[0] == version:
            return self._index_cache[1]
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.get(VERSION)
            pipe.hgetall(INDEX)
            version, raw_index = await pipe.execute()
        rows = []
        for camera_id, raw in raw_index.items():
            if raw == "[]":  # an id reserved by a create in progress
                continue
            line, area, enabled, name, mode = json.loads(raw)
            rows.append((camera_id, line, area, bool(enabled), name.casefold(), mode))
        self._index_cache = (version, rows)
        return rows

    async def count_by_line(self) -> dict[str, int]:
        counts = dict.fromkeys(self._line_ids, 0)
        for _, line, *_ in await self._index():
            counts[line] = counts.get(line, 0) + 1
        return counts

    # -- writes ----------------------------------------------------------------------------------
    async def _save(self, camera: Camera, creds: Credentials | Literal["keep"] | None) -> None:
        entry = json.dumps(
            [camera.line, camera.area, camera.enabled, camera.name, camera.mode], ensure_ascii=False
        )
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.set(key("cam", camera.id), camera.model_dump_json())
            pipe.hset(INDEX, camera.id, entry)
            pipe.incr(VERSION)
            if creds is None:
                pipe.delete(key("cred", camera.id))
            elif creds != "keep":
                pipe.delete(key("cred", camera.id))
                pipe.hset(
                    key("cred", camera.id),
                    mapping={"username": creds.username, "password": creds.password.get_secret_value()},
                )
            pipe.publish(CHANNEL, json.dumps({"op": "put", "id": camera.id}))
            await pipe.execute()

    async def create(self, data: CameraCreate) -> Camera:
        self._check_line(data.line)
        self._check_streams(data.streams)
        streams, url_creds = _split_stream_credentials(data.streams)
        creds_in = data.credentials or url_creds
        camera_id = data.id or f"{data.line.replace('_', '')[:8]}-{secrets.token_hex(4)}"
        reserved = await self._redis.hsetnx(INDEX, camera_id, "[]")
        if not reserved:
            raise Conflict(f"camera id {camera_id!r} already exists")
        now = datetime.now(UTC)
        fields = data.model_dump(exclude={"id", "credentials", "streams"})
        camera = Camera(
            id=camera_id,
            streams=streams,
            has_credentials=creds_in is not None,
            created_at=now,
            updated_at=now,
            **fields,
        )
        creds = Credentials(username=creds_in.username, password=creds_in.password) if creds_in else None
        try:
            await self._save(camera, creds)
        except BaseException:
            await self._redis.hdel(INDEX, camera_id)
            raise
        return camera

    async def update(self, camera_id: str, patch: CameraPatch) -> tuple[Camera, Camera]:
        """Apply the fields present in ``patch``; returns (before, after)."""
        before = await self.require(camera_id)
        changes = patch.model_dump(exclude_unset=True, exclude={"credentials"})
        if "line" in changes:
            if changes["line"] is None:
                raise InvalidField(("body", "line"), "line cannot be null")
            self._check_line(changes["line"])
        for field in ("name", "streams", "mode", "enabled", "tags"):
            if field in changes and changes[field] is None:
                raise InvalidField(("body", field), f"{field} cannot be null")
        creds: Credentials | Literal["keep"] | None = "keep"
        has_credentials = before.has_credentials
        if patch.streams is not None:
            self._check_streams(patch.streams)
            streams, url_creds = _split_stream_credentials(patch.streams)
            changes["streams"] = streams.model_dump()
            if url_creds is not None:
                creds = Credentials(username=url_creds.username, password=url_creds.password)
                has_credentials = True
        if "credentials" in patch.model_fields_set:
            if patch.credentials is None:
                creds, has_credentials = None, False
            else:
                creds = Credentials(username=patch.credentials.username, password=patch.credentials.password)
                has_credentials = True
        merged = before.model_dump() | changes
        merged.update(has_credentials=has_credentials, updated_at=datetime.now(UTC))
        after = Camera.model_validate(merged)
        await self._save(after, creds)
        return before, after

    async def delete(self, camera_id: str) -> Camera:
        camera = await self.require(camera_id)
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.delete(key("cam", camera_id), key("cred", camera_id))
            pipe.hdel(INDEX, camera_id)
            pipe.incr(VERSION)
            pipe.publish(CHANNEL, json.dumps({"op": "delete", "id": camera_id}))
            await pipe.execute()
        return camera

    # -- change feed -----------------------------------------------------------------------------
    async def changes(self) -> AsyncIterator[RegistryChange]:
        """Every put/delete from any worker, as they happen (Redis pub/sub)."""
        pubsub = self._redis.pubsub()
        await pubsub.subscribe(CHANNEL)
        try:
            async for message in pubsub.listen():
                if message.get("type") != "message":
                    continue
                data = json.loads(message["data"])
                yield RegistryChange(op=data["op"], id=data["id"])
        finally:
            await pubsub.aclose()
