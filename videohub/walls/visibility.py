"""What of a wall (or preset) each user may see: another line's cameras are "no permission", without ids.

Walls, presets and tours name cameras by id, and a line admin must not learn the ids of other lines'
cameras (the registry answers them 404). ``redact_wall_for`` is the one pure function that every
way a wall leaves the service goes through (HTTP, /ws pushes): a tile whose camera the user may not
see keeps its place and stream but its ``camera_id`` becomes null, with ``hidden: true`` and
``reason: "forbidden"``; a tour keeps its length (so every view steps in time) with null in place
of such cameras, and is marked the same way. A camera that is no longer registered counts as not
visible: its line is unknown. Walls and tours without hidden cameras are returned as stored.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Literal, Protocol

from pydantic import Field

from videohub.models import Camera, User
from videohub.policy import can_see_line, visible_lines
from videohub.walls.models import CameraRef, Layout, Preset, StreamName, Strict, Tile, Tour, Wall, WallSpec

LineOf = Callable[[str], str | None]
"""A camera id's line (None: not registered)."""


class HiddenTile(Strict):
    """A tile showing a camera the caller may not see."""

    camera_id: None = None
    stream: StreamName = "sub"
    hidden: Literal[True] = True
    reason: Literal["forbidden"] = "forbidden"


class HiddenTour(Strict):
    """A tour with cameras the caller may not see: null in their place."""

    tile: int | Literal["wall"]
    cameras: list[CameraRef | None]
    dwell_seconds: int
    started_at: float | None = None
    hidden: Literal[True] = True
    reason: Literal["forbidden"] = "forbidden"


class WallSpecView(Strict):
    """A wall's content as one user may see it (see the module docstring)."""

    name: str = ""
    layout: Layout = "4"
    tiles: list[Tile | HiddenTile] = Field(default_factory=list)
    tours: list[Tour | HiddenTour] = Field(default_factory=list)
    maximized: int | None = None


class WallView(WallSpecView):
    id: str
    version: int = Field(0, description="Increments on every change; displays ignore older versions.")
    updated_at: datetime | None = None
    updated_by: str | None = None


class PresetView(Strict):
    id: str
    name: str
    wall: WallSpecView
    created_at: datetime
    created_by: str


def _redacted(user: User, spec: WallSpec, line_of: LineOf) -> WallSpecView:
    def visible(camera_id: str) -> bool:
        line = line_of(camera_id)
        return line is not None and can_see_line(user, line)

    show_all = visible_lines(user) is None
    tiles: list[Tile | HiddenTile] = []
    for tile in spec.tiles:
        hide = not show_all and tile.camera_id is not None and not visible(tile.camera_id)
        tiles.append(HiddenTile(stream=tile.stream) if hide else tile)
    tours: list[Tour | HiddenTour] = []
    for tour in spec.tours:
        shown = list(tour.cameras) if show_all else [c if visible(c) else None for c in tour.cameras]
        if None in shown:
            hidden = HiddenTour(
                tile=tour.tile, cameras=shown, dwell_seconds=tour.dwell_seconds, started_at=tour.started_at
            )
            tours.append(hidden)
        else:
            tours.append(tour)
    return WallSpecView(
        name=spec.name, layout=spec.layout, tiles=tiles, tours=tours, maximized=spec.maximized
    )


def redact_wall_for(user: User, wall: Wall, line_of: LineOf) -> WallView:
    """``wall`` as ``user`` may see it; ``line_of`` gives each named camera's line (pure, no I/O)."""
    view = _redacted(user, wall, line_of)
    return WallView(
        id=wall.id,
        version=wall.version,
        updated_at=wall.updated_at,
        updated_by=wall.updated_by,
        name=view.name,
        layout=view.layout,
        tiles=view.tiles,
        tours=view.tours,
        maximized=view.maximized,
    )


def redact_preset_for(user: User, preset: Preset, line_of: LineOf) -> PresetView:
    """``preset`` as ``user`` may see it (its wall redacted like ``redact_wall_for``)."""
    return PresetView(
        id=preset.id,
        name=preset.name,
        wall=_redacted(user, preset.wall, line_of),
        created_at=preset.created_at,
        created_by=preset.created_by,
    )


class CameraLookup(Protocol):
    async def get(self, camera_id: str) -> Camera | None: ...


async def lines_of(user: User, specs: Iterable[WallSpec], registry: CameraLookup) -> LineOf:
    """The lines of the cameras ``specs`` name, looked up once each; nothing is looked up for a user
    who sees every line."""
    if visible_lines(user) is None:
        return lambda camera_id: None
    lines: dict[str, str | None] = {}
    for spec in specs:
        for _, camera_id in spec.camera_refs():
            if camera_id not in lines:
                camera = await registry.get(camera_id)
                lines[camera_id] = camera.line if camera is not None else None
    return lines.get


async def visible_wall(user: User, wall: Wall, registry: CameraLookup) -> WallView:
    """``redact_wall_for`` with the lines looked up in the registry."""
    return redact_wall_for(user, wall, await lines_of(user, [wall], registry))
