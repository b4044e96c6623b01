"""Walls and presets in Redis, and the pub/sub channel that tells every worker a wall changed.

Keys: ``vh:wall:<id>`` (JSON, with its version), ``vh:walls`` (set of ids),
``vh:preset:<id>`` (JSON), ``vh:presets`` (sorted set by creation time). Every change is published
on ``vh:walls:changed`` with the whole wall, so a display connected to any worker follows it; a
preset saved or deleted is published there too (``PRESETS_CHANGED``), so every console's list follows.
"""

from __future__ import annotations

import secrets
import time
from datetime import UTC, datetime

import redis.asyncio as aioredis
from redis.exceptions import WatchError

from videohub.errors import NotFound, StaleWall
from videohub.store import key
from videohub.walls.models import Preset, PresetCreate, Tour, Wall, WallSpec

WALLS = key("walls")
PRESETS = key("presets")
CHANNEL = key("walls", "changed")
PRESETS_CHANGED = '{"kind": "presets"}'
DEFAULT_WALL = "main"


def _wall_key(wall_id: str) -> str:
    return key("wall", wall_id)


def _preset_key(preset_id: str) -> str:
    return key("preset", preset_id)


def _same_tour(a: Tour, b: Tour) -> bool:
    return a.tile == b.tile and a.cameras == b.cameras and a.dwell_seconds == b.dwell_seconds


def stamp_tours(spec: WallSpec, before: WallSpec | None, now: float) -> WallSpec:
    """Keep the start time of tours that did not change (the cycle goes on); new ones start now."""
    old = before.tours if before is not None else []
    tours = []
    for tour in spec.tours:
        kept = next((o for o in old if _same_tour(o, tour) and o.started_at is not None), None)
        tours.append(tour.model_copy(update={"started_at": kept.started_at if kept else now}))
    return spec.model_copy(update={"tours": tours})


class WallStore:
    """Owns the walls' and presets' Redis keys; the API is its only writer."""

    def __init__(self, redis: aioredis.Redis) -> None:
        self._redis = redis

    async def get(self, wall_id: str) -> Wall:
        """The wall, or an empty 2×2 wall (version 0) when none was saved under this id yet."""
        raw = await self._redis.get(_wall_key(wall_id))
        if raw is None:
            return Wall(id=wall_id, **WallSpec().padded().model_dump())
        return Wall.model_validate_json(raw)

    async def all(self) -> list[Wall]:
        ids = sorted(set(await self._redis.smembers(WALLS)) | {DEFAULT_WALL})
        return [await self.get(wall_id) for wall_id in ids]

    async def put(
        self, wall_id: str, spec: WallSpec, actor: str, *, expected_version: int | None = None
    ) -> tuple[Wall, Wall]:
        """Replace the wall; returns (before, after) and publishes ``after`` to every worker.

        With ``expected_version`` the write happens only if the wall is still at that version
        (StaleWall otherwise): two consoles editing one wall do not silently undo each other.
        The read-check-write is one Redis transaction (WATCH), so it holds across workers too.
        """
        wkey = _wall_key(wall_id)
        async with self._redis.pipeline(transaction=True) as pipe:
            while True:
                try:
                    await pipe.watch(wkey)
                    raw = await pipe.get(wkey)
                    before = Wall.model_validate_json(raw) if raw else await self.get(wall_id)
                    if expected_version is not None and before.version != expected_version:
                        raise StaleWall(before.version)
                    stamped = stamp_tours(spec.padded(), before, time.time())
                    after = Wall(
                        id=wall_id,
                        version=before.version + 1,
                        updated_at=datetime.now(UTC),
                        updated_by=actor,
                        **stamped.model_dump(),
                    )
                    body = after.model_dump_json()
                    pipe.multi()
                    pipe.set(wkey, body)
                    pipe.sadd(WALLS, wall_id)
                    pipe.publish(CHANNEL, body)
                    await pipe.execute()
                    return before, after
                except WatchError:
                    continue  # another writer got in between: read again

    # ---- presets ----------------------------------------------------------------------------

    async def presets(self) -> list[Preset]:
        ids = await self._redis.zrange(PRESETS, 0, -1)
        if not ids:
            return []
        raws = await self._redis.mget([_preset_key(i) for i in ids])
        return [Preset.model_validate_json(raw) for raw in raws if raw is not None]

    async def preset(self, preset_id: str) -> Preset:
        raw = await self._redis.get(_preset_key(preset_id))
        if raw is None:
            raise NotFound(f"preset {preset_id!r} not found")
        return Preset.model_validate_json(raw)

    async def create_preset(self, body: PresetCreate, actor: str) -> Preset:
        # Tours in a preset start afresh when recalled, so their start times are not kept.
        spec = body.wall.padded()
        spec = spec.model_copy(
            update={"tours": [t.model_copy(update={"started_at": None}) for t in spec.tours]}
        )
        preset = Preset(
            id=secrets.token_hex(6),
            name=body.name,
            wall=spec,
            created_at=datetime.now(UTC),
            created_by=actor,
        )
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.set(_preset_key(preset.id), preset.model_dump_json())
            pipe.zadd(PRESETS, {preset.id: preset.created_at.timestamp()})
            pipe.publish(CHANNEL, PRESETS_CHANGED)
            await pipe.execute()
        return preset

    async def delete_preset(self, preset_id: str) -> Preset:
        preset = await self.preset(preset_id)
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.delete(_preset_key(preset_id))
            pipe.zrem(PRESETS, preset_id)
            pipe.publish(CHANNEL, PRESETS_CHANGED)
            await pipe.execute()
        return preset
