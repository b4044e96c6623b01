"""Video wall API: walls (GET/PUT) and presets (list, create, get, delete, recall).

Everyone logged in reads; operators and admins write. Every write is audited and published to the
displays over Redis pub/sub (see ``videohub.walls.store``). A line admin reads other lines' cameras
as hidden tiles without ids (``videohub.walls.visibility``).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Path, Query, Response

from videohub.api.deps import CurrentUser, ServicesDep
from videohub.errors import InvalidField
from videohub.models import User
from videohub.policy import WALL_WRITERS, check_role
from videohub.services import Services
from videohub.walls import Preset, PresetCreate, PresetView, Wall, WallSpec, WallStore, WallView
from videohub.walls.models import WALL_ID
from videohub.walls.visibility import lines_of, redact_preset_for, redact_wall_for

router = APIRouter(tags=["walls"])

WRITERS = WALL_WRITERS
WallId = Annotated[str, Path(pattern=WALL_ID.pattern, description="Wall slug, e.g. 'main'.")]


def walls_of(svc: Services) -> WallStore:
    return WallStore(svc.store.redis)


async def check_cameras(svc: Services, spec: WallSpec, prefix: tuple[str | int, ...]) -> None:
    """A 422 naming the field for the first camera that is not registered."""
    known: dict[str, bool] = {}
    for loc, camera_id in spec.camera_refs():
        if camera_id not in known:
            known[camera_id] = await svc.registry.get(camera_id) is not None
        if not known[camera_id]:
            raise InvalidField((*prefix, *loc), f"camera {camera_id!r} is not registered")


def _write_allowed(user: User) -> None:
    check_role(user, *WRITERS)


async def _walls_for(user: User, svc: Services, walls: list[Wall]) -> list[WallView]:
    line_of = await lines_of(user, walls, svc.registry)
    return [redact_wall_for(user, wall, line_of) for wall in walls]


async def _presets_for(user: User, svc: Services, presets: list[Preset]) -> list[PresetView]:
    line_of = await lines_of(user, [p.wall for p in presets], svc.registry)
    return [redact_preset_for(user, preset, line_of) for preset in presets]


@router.get("/api/walls", response_model=list[WallView])
async def list_walls(user: CurrentUser, svc: ServicesDep) -> list[WallView]:
    return await _walls_for(user, svc, await walls_of(svc).all())


@router.get("/api/walls/{wall_id}", response_model=WallView)
async def get_wall(wall_id: WallId, user: CurrentUser, svc: ServicesDep, response: Response) -> WallView:
    """The wall; a wall never saved is empty (layout 4) so a display can follow it from the start."""
    wall = await walls_of(svc).get(wall_id)
    response.headers["ETag"] = f'"{wall.version}"'
    (view,) = await _walls_for(user, svc, [wall])
    return view


def _version(if_match: str | None) -> int | None:
    """The wall version an ``If-Match`` names (``"7"``, ``W/"7"`` or ``7``); None for ``*``/absent."""
    if if_match is None or if_match.strip() == "*":
        return None
    raw = if_match.strip().removeprefix("W/").strip('"')
    if not raw.isdigit():
        raise InvalidField(("header", "If-Match"), "If-Match must be a wall version (its ETag)")
    return int(raw)


@router.put("/api/walls/{wall_id}", response_model=WallView)
async def put_wall(
    wall_id: WallId,
    body: WallSpec,
    user: CurrentUser,
    svc: ServicesDep,
    response: Response,
    if_match: Annotated[
        str | None, Header(description="The ETag (version) the change is based on; 412 when stale.")
    ] = None,
) -> WallView:
    _write_allowed(user)
    await check_cameras(svc, body, ("body",))
    before, after = await walls_of(svc).put(wall_id, body, user.username, expected_version=_version(if_match))
    response.headers["ETag"] = f'"{after.version}"'
    await svc.audit.record(
        user.username,
        "wall.update",
        wall_id,
        before.model_dump(mode="json") if before.version else None,
        after.model_dump(mode="json"),
    )
    (view,) = await _walls_for(user, svc, [after])
    return view


@router.get("/api/presets", response_model=list[PresetView])
async def list_presets(user: CurrentUser, svc: ServicesDep) -> list[PresetView]:
    return await _presets_for(user, svc, await walls_of(svc).presets())


@router.post("/api/presets", response_model=PresetView, status_code=201)
async def create_preset(
    body: PresetCreate, user: CurrentUser, svc: ServicesDep, response: Response
) -> PresetView:
    _write_allowed(user)
    await check_cameras(svc, body.wall, ("body", "wall"))
    preset = await walls_of(svc).create_preset(body, user.username)
    await svc.audit.record(user.username, "preset.create", preset.id, None, preset.model_dump(mode="json"))
    response.headers["Location"] = f"/api/presets/{preset.id}"
    (view,) = await _presets_for(user, svc, [preset])
    return view


@router.get("/api/presets/{preset_id}", response_model=PresetView)
async def get_preset(preset_id: str, user: CurrentUser, svc: ServicesDep) -> PresetView:
    (view,) = await _presets_for(user, svc, [await walls_of(svc).preset(preset_id)])
    return view


@router.delete("/api/presets/{preset_id}", status_code=204)
async def delete_preset(preset_id: str, user: CurrentUser, svc: ServicesDep) -> None:
    _write_allowed(user)
    preset = await walls_of(svc).delete_preset(preset_id)
    await svc.audit.record(user.username, "preset.delete", preset_id, preset.model_dump(mode="json"), None)


@router.post("/api/presets/{preset_id}/recall", response_model=WallView)
async def recall_preset(
    preset_id: str,
    user: CurrentUser,
    svc: ServicesDep,
    wall: Annotated[
        str, Query(pattern=WALL_ID.pattern, description="The wall to load the preset on.")
    ] = "main",
) -> WallView:
    """Load the preset's layout, tiles and tours on ``wall``."""
    _write_allowed(user)
    store = walls_of(svc)
    preset = await store.preset(preset_id)
    before, after = await store.put(wall, preset.wall, user.username)
    await svc.audit.record(
        user.username,
        "preset.recall",
        wall,
        before.model_dump(mode="json") if before.version else None,
        {"preset": preset_id, "wall": after.model_dump(mode="json")},
    )
    (view,) = await _walls_for(user, svc, [after])
    return view
