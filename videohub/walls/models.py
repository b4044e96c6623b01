"""The video wall's data shapes: layout, tiles, tours (轮巡) and presets (预案).

A wall is what the console drives and every display of that wall shows. Tours carry the time they
started (set by the server), so the console and each display compute the same current camera from
the clock without a write per dwell step.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

Layout = Literal["1", "4", "9", "16", "1+5", "1+7"]
TILE_COUNT: dict[str, int] = {"1": 1, "4": 4, "9": 9, "16": 16, "1+5": 6, "1+7": 8}
StreamName = Literal["main", "sub"]
WALL_ID = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
CAMERA_REF = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
MAX_TOUR_CAMERAS = 256

CameraRef = Annotated[str, Field(pattern=CAMERA_REF.pattern, description="A registered camera's id.")]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Tile(Strict):
    camera_id: CameraRef | None = Field(None, description="Camera shown in the tile; null = empty tile.")
    stream: StreamName = Field(
        "sub", description="Grid tiles play the sub stream; a maximised tile the main."
    )


class Tour(Strict):
    """Cycle ``cameras`` in one tile (``tile`` = index) or page them across the whole wall ("wall")."""

    tile: int | Literal["wall"] = Field(description="Tile index (0-based) or 'wall'.")
    cameras: list[CameraRef] = Field(min_length=1, max_length=MAX_TOUR_CAMERAS)
    dwell_seconds: int = Field(10, ge=3, le=3600, description="Seconds each camera (or page) stays.")
    started_at: float | None = Field(
        None, description="Epoch seconds the tour began; set by the server when the tour changes."
    )

    @field_validator("tile")
    @classmethod
    def _tile(cls, value: int | str) -> int | str:
        if isinstance(value, int) and value < 0:
            raise ValueError("tile index must be 0 or more")
        return value


class WallSpec(Strict):
    """What a console writes: the whole wall at once (PUT replaces it)."""

    name: str = Field("", max_length=64, description="Display name of the wall.")
    layout: Layout = "4"
    tiles: list[Tile] = Field(default_factory=list, max_length=16)
    tours: list[Tour] = Field(default_factory=list, max_length=16)
    maximized: int | None = Field(None, ge=0, description="Index of the tile shown full size, if any.")

    @model_validator(mode="after")
    def _fits_layout(self) -> WallSpec:
        count = TILE_COUNT[self.layout]
        if len(self.tiles) > count:
            raise ValueError(f"layout {self.layout} has {count} tiles, got {len(self.tiles)}")
        tiles_toured: set[int] = set()
        for tour in self.tours:
            if tour.tile == "wall":
                if len(self.tours) > 1:
                    raise ValueError("a wall tour cannot be combined with other tours")
            elif tour.tile >= count:
                raise ValueError(f"tour tile {tour.tile} is outside layout {self.layout} (0..{count - 1})")
            elif tour.tile in tiles_toured:
                raise ValueError(f"two tours in tile {tour.tile}")
            else:
                tiles_toured.add(tour.tile)
        if self.maximized is not None and self.maximized >= count:
            raise ValueError(f"maximized tile {self.maximized} is outside layout {self.layout}")
        return self

    def padded(self) -> WallSpec:
        """The same wall with exactly one tile entry per layout slot."""
        count = TILE_COUNT[self.layout]
        tiles = list(self.tiles) + [Tile() for _ in range(count - len(self.tiles))]
        return self.model_copy(update={"tiles": tiles})

    def camera_refs(self) -> list[tuple[tuple[str | int, ...], str]]:
        """(field location, camera id) of every camera the wall names, for existence checks."""
        refs: list[tuple[tuple[str | int, ...], str]] = []
        for i, tile in enumerate(self.tiles):
            if tile.camera_id is not None:
                refs.append((("tiles", i, "camera_id"), tile.camera_id))
        for i, tour in enumerate(self.tours):
            for j, camera in enumerate(tour.cameras):
                refs.append((("tours", i, "cameras", j), camera))
        return refs


class Wall(WallSpec):
    id: str
    version: int = Field(0, description="Increments on every change; displays ignore older versions.")
    updated_at: datetime | None = None
    updated_by: str | None = None


class PresetCreate(Strict):
    name: str = Field(min_length=1, max_length=64, description="Name shown in the preset list.")
    wall: WallSpec

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        value = value.strip()
        if not value:
            raise ValueError("name is blank")
        return value


class Preset(Strict):
    id: str
    name: str
    wall: WallSpec
    created_at: datetime
    created_by: str
