"""The video wall: layouts, tiles, tours and presets, stored in Redis and pushed to displays."""

from videohub.walls.models import TILE_COUNT, Preset, PresetCreate, Tile, Tour, Wall, WallSpec
from videohub.walls.store import CHANNEL, DEFAULT_WALL, WallStore
from videohub.walls.visibility import (
    PresetView,
    WallView,
    redact_preset_for,
    redact_wall_for,
    visible_wall,
)

__all__ = [
    "CHANNEL",
    "DEFAULT_WALL",
    "TILE_COUNT",
    "Preset",
    "PresetCreate",
    "PresetView",
    "Tile",
    "Tour",
    "Wall",
    "WallSpec",
    "WallStore",
    "WallView",
    "redact_preset_for",
    "redact_wall_for",
    "visible_wall",
]
