"""The camera registry API: CRUD, filters and paging, CSV import."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response

from videohub.api.deps import CurrentUser, ServicesDep, VisibleCamera
from videohub.errors import InvalidField
from videohub.models import Camera, CameraCreate, CameraPage, CameraPatch, ImportResult, LineOut
from videohub.policy import check_camera_id, check_registry_write, visible_lines
from videohub.registry import CameraFilter
from videohub.registry_csv import import_csv

router = APIRouter(tags=["cameras"])


def _snapshot(camera: Camera) -> dict[str, object]:
    return camera.model_dump(mode="json")


@router.get("/api/lines", response_model=list[LineOut])
async def list_lines(user: CurrentUser, svc: ServicesDep) -> list[LineOut]:
    counts = await svc.registry.count_by_line()
    allowed = visible_lines(user)
    return [
        LineOut(
            **line.model_dump(exclude={"id_prefix"}), id_prefix=line.prefix, cameras=counts.get(line.id, 0)
        )
        for line in svc.settings.lines
        if allowed is None or line.id in allowed
    ]


@router.get("/api/cameras", response_model=CameraPage)
async def list_cameras(
    user: CurrentUser,
    svc: ServicesDep,
    line: str | None = None,
    area: str | None = None,
    q: Annotated[str | None, Query(max_length=64, description="Search in name and id")] = None,
    enabled: bool | None = None,
    mode: Annotated[str | None, Query(pattern="^(always_on|on_demand)$")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> CameraPage:
    flt = CameraFilter(line=line, lines=visible_lines(user), area=area, q=q, enabled=enabled, mode=mode)
    return await svc.registry.search(flt, limit=limit, offset=offset)


@router.post("/api/cameras", response_model=Camera, status_code=201)
async def create_camera(
    body: CameraCreate, user: CurrentUser, svc: ServicesDep, response: Response
) -> Camera:
    check_registry_write(user, body.line)
    check_camera_id(user, body.id, svc.registry.prefix(body.line))
    camera = await svc.registry.create(body)
    await svc.audit.record(user.username, "camera.create", camera.id, None, _snapshot(camera))
    response.headers["Location"] = f"/api/cameras/{camera.id}"
    return camera


@router.post("/api/cameras/import", response_model=ImportResult)
async def import_cameras(request: Request, user: CurrentUser, svc: ServicesDep) -> ImportResult:
    """CSV with a header row; each row is created on its own, and one bad row does not reject the others."""
    # Bounded before it is read: server.limits.csv_body_bytes answers 413 (videohub/http/bodies.py).
    raw = await request.body()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InvalidField(("body",), f"CSV must be UTF-8 text: {exc.reason} at byte {exc.start}") from None
    return await import_csv(text, user, svc.registry, svc.audit)


@router.get("/api/cameras/{camera_id}", response_model=Camera)
async def get_camera(camera: VisibleCamera) -> Camera:
    return camera


@router.patch("/api/cameras/{camera_id}", response_model=Camera)
async def update_camera(
    body: CameraPatch, camera: VisibleCamera, user: CurrentUser, svc: ServicesDep
) -> Camera:
    check_registry_write(user, camera.line)
    if body.line is not None and body.line != camera.line:
        check_registry_write(user, body.line)
    before, after = await svc.registry.update(camera.id, body)
    await svc.audit.record(user.username, "camera.update", camera.id, _snapshot(before), _snapshot(after))
    return after


@router.delete("/api/cameras/{camera_id}", status_code=204)
async def delete_camera(camera: VisibleCamera, user: CurrentUser, svc: ServicesDep) -> None:
    check_registry_write(user, camera.line)
    await svc.registry.delete(camera.id)
    await svc.audit.record(user.username, "camera.delete", camera.id, _snapshot(camera), None)
