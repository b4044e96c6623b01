"""The camera registry in Redis, and the change feed that ingest follows.

Keys:
    vh:cam:<id>        JSON of the Camera: URLs in stored form (``ingest.url.parse_url``: no userinfo,
                       ``***`` for credential parameters), no password
    vh:cred:<id>       hash stream -> JSON {endpoint, username, password, params}: each stream's
                       secrets, bound to the scheme://host:port they were given for, never returned.
                       Older versions kept {username, password} for the whole camera: read as the main
                       stream's, bound to the main URL's endpoint (``migrate`` rewrites them).
    vh:cams:index      hash id -> compact JSON [line, area, enabled, name, mode, has_sub] used to filter,
                       page and count 10,000 cameras without reading every record
    vh:cams:version    counter bumped by every write; each process keeps the parsed index until it moves
    vh:registry        pub/sub channel of {"op": "put"|"delete", "id": ...}

Credentials belong to a host: an edit that changes a stream's scheme, host or port without giving
credentials again clears them, and a sub stream uses the main stream's only on the same endpoint
(the rules: ``videohub.stream_secrets``).
Who may do what is decided by ``videohub.policy`` in the API layer; this module checks data: URLs
(form and network policy), line prefixes of ids, and the quotas.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import NamedTuple

import redis.asyncio as aioredis
from pydantic import SecretStr, ValidationError

from ingest.netpolicy import BlockedUrl, NetworkPolicy
from ingest.url import CameraUrl, UrlError, parse_url
from videohub.errors import Conflict, InvalidField, NotFound
from videohub.models import (
    Camera,
    CameraCreate,
    CameraPage,
    CameraPatch,
    CameraStream,
    CameraStreams,
    Credentials,
    CredentialsIn,
    RegistryChange,
    Streams,
)
from videohub.settings.core import default_id_prefix
from videohub.store import key
from videohub.stream_secrets import (
    STREAMS,
    UNSET,
    StreamSecrets,
    Unset,
    decode_secrets,
    drop_shared,
    effective_secrets,
    flag_streams,
    legacy_url,
    secrets_for,
    with_main_credentials,
)

log = logging.getLogger(__name__)

INDEX = key("cams", "index")
VERSION = key("cams", "version")
CHANNEL = key("registry")


@dataclass(frozen=True, slots=True)
class CameraFilter:
    line: str | None = None
    lines: frozenset[str] | None = None
    """Restrict to these lines (a line_admin's view); None means all."""
    area: str | None = None
    q: str | None = None
    enabled: bool | None = None
    mode: str | None = None


@dataclass(frozen=True, slots=True)
class RegistryLimits:
    """Quotas (from ``ingest.*``): one line cannot starve the others."""

    max_cameras_per_line: int = 5000
    max_always_on_streams: int = 512
    always_on_streams: tuple[str, ...] = ("main",)


class _Row(NamedTuple):
    id: str
    line: str
    area: str
    enabled: bool
    name: str
    """Case-folded, for search."""
    mode: str
    has_sub: bool


def _blocked(exc: BlockedUrl) -> str:
    keys = {"allowed_networks": "ingest.allowed_networks", "allowed_hosts": "ingest.allowed_hosts"}
    setting = keys.get(exc.rule)
    return f"{exc} ({setting})" if setting else str(exc)


class CameraRegistry:
    """Cameras of every line, stored in Redis; publishes each change for the Feed hub."""

    def __init__(
        self,
        redis: aioredis.Redis,
        line_ids: list[str],
        *,
        allow_test_sources: bool,
        policy: NetworkPolicy | None = None,
        prefixes: Mapping[str, str] | None = None,
        limits: RegistryLimits | None = None,
    ) -> None:
        """``policy`` None checks URLs' form only (unit tests); the service always passes one."""
        self._redis = redis
        self._line_ids = line_ids
        self._allow_test_sources = allow_test_sources
        self._policy = policy
        self._prefixes = dict(prefixes) if prefixes else {line: default_id_prefix(line) for line in line_ids}
        self._limits = limits or RegistryLimits()
        self._write = asyncio.Lock()
        self._index_cache: tuple[str | None, list[_Row]] | None = None
        self._invalid: set[str] = set()

    @property
    def network_policy(self) -> NetworkPolicy | None:
        """Where URLs may point: what ingest checks again before it opens one."""
        return self._policy

    @property
    def allow_test_sources(self) -> bool:
        return self._allow_test_sources

    def prefix(self, line: str) -> str:
        """The camera id prefix of ``line`` (ids look like ``<prefix>-…``)."""
        return self._prefixes.get(line) or default_id_prefix(line)

    # -- validation ------------------------------------------------------------------------------
    def _check_line(self, line: str) -> None:
        if line not in self._line_ids:
            raise InvalidField(("body", "line"), f"unknown line {line!r}; known: {', '.join(self._line_ids)}")

    def _prefix_owner(self, camera_id: str) -> str | None:
        return next((ln for ln, p in self._prefixes.items() if camera_id.startswith(p + "-")), None)

    def _check_id(self, camera_id: str, line: str) -> None:
        # An id with another line's prefix would let that line's admin collide with it, and learn from
        # the 409 that it exists: refused for everyone, before existence is even looked at.
        owner = self._prefix_owner(camera_id)
        if owner is not None and owner != line:
            raise InvalidField(
                ("body", "id"), f"ids starting with '{self._prefixes[owner]}-' belong to another line"
            )

    def _parse(self, loc: tuple[str, ...], url: str) -> CameraUrl:
        try:
            parsed = parse_url(url)
        except UrlError as exc:
            raise InvalidField(loc, str(exc)) from None
        if parsed.endpoint is None and not self._allow_test_sources:
            raise InvalidField(loc, "file:// sources are only accepted when demo.allow_test_sources is on")
        return parsed

    async def _check_network(self, loc: tuple[str, ...], parsed: CameraUrl) -> None:
        policy, endpoint = self._policy, parsed.endpoint
        if policy is None or endpoint is None:
            return
        try:
            if policy.is_literal(endpoint):
                policy.check(endpoint)
            else:
                await asyncio.to_thread(policy.check, endpoint)  # DNS
        except BlockedUrl as exc:
            raise InvalidField(loc, _blocked(exc)) from None

    # -- quotas ----------------------------------------------------------------------------------
    def always_on_cost(self, mode: str, enabled: bool, has_sub: bool) -> int:
        """always_on streams (ingest threads pulled continuously) a camera costs."""
        if not enabled or mode != "always_on":
            return 0
        return sum(1 for s in self._limits.always_on_streams if s == "main" or (s == "sub" and has_sub))

    async def check_quota(self, new_per_line: Mapping[str, int], new_always_on: int) -> None:
        """409 when adding these cameras / always_on streams would pass a quota (before any work)."""
        counts: Counter[str] = Counter()
        always_on = 0
        for row in await self._index():
            counts[row.line] += 1
            always_on += self.always_on_cost(row.mode, row.enabled, row.has_sub)
        limit = self._limits.max_cameras_per_line
        for line, added in sorted(new_per_line.items()):
            if added > 0 and counts[line] + added > limit:
                raise Conflict(
                    f"line {line!r} would have {counts[line] + added} cameras; its limit is {limit} "
                    "(ingest.max_cameras_per_line)"
                )
        limit = self._limits.max_always_on_streams
        if new_always_on > 0 and always_on + new_always_on > limit:
            raise Conflict(
                f"this node takes at most {limit} always_on streams (ingest.max_always_on_streams); "
                "register the camera as on_demand or disable another"
            )

    # -- reads -----------------------------------------------------------------------------------
    def _decode(self, camera_id: str, raw: str) -> Camera | None:
        try:
            return Camera.model_validate_json(raw)
        except ValidationError:
            # Written past the API (or by a bug): never used, so never opened by ingest.
            if camera_id not in self._invalid:
                self._invalid.add(camera_id)
                log.warning("camera %s: the stored record is invalid and is ignored", camera_id)
            return None

    async def get(self, camera_id: str) -> Camera | None:
        raw = await self._redis.get(key("cam", camera_id))
        return self._decode(camera_id, raw) if raw else None

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
            for camera_id, raw in zip(chunk, raws, strict=True):
                camera = self._decode(camera_id, raw) if raw else None
                if camera is not None:
                    cameras.append(camera)
        return cameras

    async def _stored_secrets(self, camera: Camera) -> dict[str, StreamSecrets]:
        return decode_secrets(camera, await self._redis.hgetall(key("cred", camera.id)))

    async def secrets(self, camera: Camera, stream: str) -> StreamSecrets | None:
        """What ``stream``'s URL needs at open time (ingest and probes; never returned to a user)."""
        if getattr(camera.streams, stream, None) is None:
            return None
        return effective_secrets(camera, await self._stored_secrets(camera), stream)

    async def credentials(self, camera_id: str) -> Credentials | None:
        """The main stream's user name and password."""
        camera = await self.get(camera_id)
        if camera is None:
            return None
        main = (await self._stored_secrets(camera)).get("main")
        if main is None or main.username is None:
            return None
        return Credentials(username=main.username, password=SecretStr(main.password))

    async def search(self, flt: CameraFilter, limit: int = 50, offset: int = 0) -> CameraPage:
        q = flt.q.casefold() if flt.q else None
        matched: list[tuple[str, str]] = []
        for row in await self._index():
            if flt.lines is not None and row.line not in flt.lines:
                continue
            if flt.line is not None and row.line != flt.line:
                continue
            if flt.area is not None and row.area != flt.area:
                continue
            if flt.enabled is not None and row.enabled != flt.enabled:
                continue
            if flt.mode is not None and row.mode != flt.mode:
                continue
            if q is not None and q not in row.name and q not in row.id:
                continue
            matched.append((row.line, row.id))
        matched.sort()
        page_ids = [camera_id for _, camera_id in matched[offset : offset + limit]]
        return CameraPage(items=await self._load(page_ids), total=len(matched), limit=limit, offset=offset)

    async def _index(self) -> list[_Row]:
        """The parsed index, re-read only after a write."""
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
            line, area, enabled, name, mode, *rest = json.loads(raw)
            has_sub = bool(rest[0]) if rest else False
            rows.append(_Row(camera_id, line, area, bool(enabled), name.casefold(), mode, has_sub))
        self._index_cache = (version, rows)
        return rows

    async def count_by_line(self) -> dict[str, int]:
        counts = dict.fromkeys(self._line_ids, 0)
        for row in await self._index():
            counts[row.line] = counts.get(row.line, 0) + 1
        return counts

    # -- streams and their secrets -----------------------------------------------------------------
    async def _prepare(
        self,
        given: Streams,
        stored: Mapping[str, StreamSecrets],
        main_credentials: CredentialsIn | Unset | None,
    ) -> tuple[CameraStreams, dict[str, StreamSecrets]]:
        """Check the given streams' URLs and work out each stream's secrets (``stored``: before)."""
        if not isinstance(main_credentials, Unset) and "credentials" in given.main.model_fields_set:
            raise InvalidField(
                ("body", "credentials"),
                "give the main stream's credentials once: credentials or streams.main.credentials",
            )
        parsed: dict[str, CameraUrl] = {}
        for name in STREAMS:
            spec = getattr(given, name)
            if spec is not None:
                loc = ("body", "streams", name, "url")
                parsed[name] = self._parse(loc, spec.url)
                await self._check_network(loc, parsed[name])
        main, sub = parsed["main"], parsed.get("sub")
        if (
            sub is not None
            and main.username is not None
            and sub.username is not None
            and main.endpoint == sub.endpoint
            and (main.username, main.password) != (sub.username, sub.password)
        ):
            raise InvalidField(
                ("body", "streams", "sub", "url"),
                "credentials in this URL differ from those in streams.main.url",
            )
        secrets_out: dict[str, StreamSecrets] = {}
        out: dict[str, CameraStream] = {}
        for name, url in parsed.items():
            spec = getattr(given, name)
            explicit: CredentialsIn | Unset | None = UNSET
            if "credentials" in spec.model_fields_set:
                explicit = spec.credentials
            elif name == "main":
                explicit = main_credentials
            prev = stored.get(name)
            main_before = stored.get("main")
            if (
                name == "sub"
                and isinstance(explicit, Unset)
                and (prev is None or prev.username is None)
                and main_before is not None
                and main_before.username is not None
                and (prev is None or prev.endpoint == main_before.endpoint)
            ):
                # A sub stream that shared the main stream's user keeps it while its own host stays,
                # even when the main stream moves.
                prev = replace(main_before, params=prev.params if prev else ())
            secret = secrets_for(("body", "streams", name, "url"), url, prev, explicit)
            if secret is not None:
                secrets_out[name] = secret
            out[name] = CameraStream(url=url.url, transport=spec.transport)
        streams = CameraStreams(main=out["main"], sub=out.get("sub"))
        secrets_out = drop_shared(streams, secrets_out)
        return flag_streams(streams, secrets_out), secrets_out

    # -- writes ----------------------------------------------------------------------------------
    async def _save(self, camera: Camera, stored: Mapping[str, StreamSecrets] | None) -> None:
        """Write ``camera``; ``stored`` replaces its secrets (None keeps them)."""
        entry = json.dumps(
            [
                camera.line,
                camera.area,
                camera.enabled,
                camera.name,
                camera.mode,
                camera.streams.sub is not None,
            ],
            ensure_ascii=False,
        )
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.set(key("cam", camera.id), camera.model_dump_json())
            pipe.hset(INDEX, camera.id, entry)
            pipe.incr(VERSION)
            if stored is not None:
                pipe.delete(key("cred", camera.id))
                if stored:
                    pipe.hset(key("cred", camera.id), mapping={n: s.dumps() for n, s in stored.items()})
            pipe.publish(CHANNEL, json.dumps({"op": "put", "id": camera.id}))
            await pipe.execute()

    async def create(self, data: CameraCreate) -> Camera:
        self._check_line(data.line)
        camera_id = data.id or f"{self.prefix(data.line)}-{secrets.token_hex(4)}"
        self._check_id(camera_id, data.line)
        always_on = self.always_on_cost(data.mode, data.enabled, data.streams.sub is not None)
        await self.check_quota({data.line: 1}, always_on)  # before any DNS lookup
        main_credentials = data.credentials if "credentials" in data.model_fields_set else UNSET
        streams, stored = await self._prepare(data.streams, {}, main_credentials)
        async with self._write:  # one process's creates do not race past a quota together
            await self.check_quota({data.line: 1}, always_on)
            reserved = await self._redis.hsetnx(INDEX, camera_id, "[]")
            if not reserved:
                raise Conflict(f"camera id {camera_id!r} already exists")
            now = datetime.now(UTC)
            fields = data.model_dump(exclude={"id", "credentials", "streams"})
            camera = Camera(
                id=camera_id,
                streams=streams,
                has_credentials=streams.main.has_credentials,
                created_at=now,
                updated_at=now,
                **fields,
            )
            try:
                await self._save(camera, stored)
            except BaseException:
                await self._redis.hdel(INDEX, camera_id)
                raise
        return camera

    async def update(self, camera_id: str, patch: CameraPatch) -> tuple[Camera, Camera]:
        """Apply the fields present in ``patch``; returns (before, after)."""
        before = await self.require(camera_id)
        changes = patch.model_dump(exclude_unset=True, exclude={"credentials", "streams"})
        if "line" in changes:
            if changes["line"] is None:
                raise InvalidField(("body", "line"), "line cannot be null")
            self._check_line(changes["line"])
            owner = self._prefix_owner(camera_id)
            if owner is not None and owner != changes["line"]:
                raise InvalidField(
                    ("body", "line"),
                    f"camera id {camera_id!r} carries line {owner}'s prefix and cannot move to another "
                    "line; register it again there",
                )
        for name in ("name", "streams", "mode", "enabled", "tags"):
            if name in patch.model_fields_set and getattr(patch, name) is None:
                raise InvalidField(("body", name), f"{name} cannot be null")
        main_credentials = patch.credentials if "credentials" in patch.model_fields_set else UNSET
        stored = await self._stored_secrets(before)
        new_secrets: dict[str, StreamSecrets] | None = None
        streams = before.streams
        if patch.streams is not None:
            streams, new_secrets = await self._prepare(patch.streams, stored, main_credentials)
        elif not isinstance(main_credentials, Unset):
            new_secrets = with_main_credentials(before, stored, main_credentials)
            streams = flag_streams(before.streams, new_secrets)
        merged = before.model_dump() | changes
        merged.update(
            streams=streams.model_dump(),
            has_credentials=streams.main.has_credentials,
            updated_at=datetime.now(UTC),
        )
        after = Camera.model_validate(merged)
        added = self.always_on_cost(
            after.mode, after.enabled, after.streams.sub is not None
        ) - self.always_on_cost(before.mode, before.enabled, before.streams.sub is not None)
        async with self._write:
            await self.check_quota({after.line: 1} if after.line != before.line else {}, added)
            await self._save(after, new_secrets)
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

    async def migrate(self) -> int:
        """Rewrite records of older versions; returns how many. Idempotent, run at startup.

        Secrets found in stored URLs (userinfo, credential parameters: older versions kept them
        there) move to ``vh:cred``; camera-wide credentials become the main stream's; spaces and
        non-ASCII characters that older versions let into a URL are percent-encoded (a control
        character is not: such a record stays ignored); index entries gain ``has_sub``.
        """
        migrated = 0
        for camera_id, entry in (await self._redis.hgetall(INDEX)).items():
            if entry != "[]" and await self._migrate_one(camera_id, entry):
                migrated += 1
        if migrated:
            log.info("registry: migrated %d camera records", migrated)
        return migrated

    async def _migrate_one(self, camera_id: str, entry: str) -> bool:
        raw = await self._redis.get(key("cam", camera_id))
        if not raw:
            return False
        try:
            record = json.loads(raw)
            specs = {n: s for n, s in (record.get("streams") or {}).items() if n in STREAMS and s}
            urls = {name: legacy_url(spec["url"]) for name, spec in specs.items()}
        except (ValueError, TypeError, KeyError, AttributeError):
            return False  # not a camera record: ignored by every read, reported there
        data = await self._redis.hgetall(key("cred", camera_id))
        legacy_credentials = "username" in data and "main" not in data
        encoded = [n for n, found in urls.items() if found is not None and found[0] != specs[n]["url"]]
        with_secrets = {
            n: found[1] for n, found in urls.items() if found is not None and found[1].has_secrets
        }
        if None in urls.values() or not (
            encoded or with_secrets or legacy_credentials or len(json.loads(entry)) < 6
        ):
            return False
        for name in encoded:
            log.warning("camera %s: the stored %s URL is saved percent-encoded", camera_id, name)
        for name, found in urls.items():
            if found is not None:
                specs[name]["url"] = found[0]
        try:
            camera = Camera.model_validate(record)  # the stored form: secrets redacted
        except ValidationError:
            return False
        stored = decode_secrets(camera, data)
        for name, url in with_secrets.items():
            prev = stored.get(name)
            keep = prev is not None and prev.endpoint == url.endpoint
            username, password = (
                (url.username, url.password or "") if url.username is not None else (None, "")
            )
            if url.username is None and keep and prev is not None:
                username, password = prev.username, prev.password
            params = tuple((p.name.lower(), p.value) for p in url.params if p.value is not None)
            if url.endpoint is not None:
                stored[name] = StreamSecrets(url.endpoint, username, password, params)
        streams = flag_streams(camera.streams, stored)
        camera = camera.model_copy(
            update={"streams": streams, "has_credentials": streams.main.has_credentials}
        )
        await self._save(camera, stored)
        return True

    # -- change feed -----------------------------------------------------------------------------
    async def changes(
        self, subscribed: Callable[[], Awaitable[None]] | None = None
    ) -> AsyncIterator[RegistryChange]:
        """Every put/delete from any worker, as they happen (Redis pub/sub).

        ``subscribed`` is awaited once the subscription stands and before the first change is read:
        a follower reloads there, so a change made between its reload and its subscribe is not lost.
        """
        pubsub = self._redis.pubsub()
        await pubsub.subscribe(CHANNEL)
        try:
            if subscribed is not None:
                await subscribed()
            async for message in pubsub.listen():
                if message.get("type") != "message":
                    continue
                data = json.loads(message["data"])
                yield RegistryChange(op=data["op"], id=data["id"])
        finally:
            await pubsub.aclose()
