"""Feed health API: per camera, per line, and one camera's checks and timeline.

A line admin sees why a camera is down (the reasons), not FFmpeg's error text (``last_error``),
as in the ingest view; admin, operators and maintenance keep the detail.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from videohub.api.deps import CurrentUser, MonitorDep, ServicesDep, VisibleCamera
from videohub.health.report import CameraHealth, LineHealth, camera_detail, camera_rows, line_rows
from videohub.models import User
from videohub.policy import visible_lines

router = APIRouter(tags=["health"])


def _detail(user: User) -> bool:
    return user.role != "line_admin"


@router.get("/api/health/cameras", response_model=list[CameraHealth])
async def health_cameras(
    user: CurrentUser,
    svc: ServicesDep,
    monitor: MonitorDep,
    line: str | None = None,
    state: Annotated[str | None, Query(pattern="^(unknown|online|degraded|offline)$")] = None,
) -> list[CameraHealth]:
    """State, reasons, fps, bitrate, last packet and 24 h uptime of every camera the caller sees."""
    allowed = visible_lines(user)
    cameras = [
        c
        for c in await svc.registry.all()
        if (allowed is None or c.line in allowed) and (line is None or c.line == line)
    ]
    rows = await camera_rows(monitor, cameras, state)
    if not _detail(user):
        for row in rows:
            row.last_error = None
    return rows


@router.get("/api/health/lines", response_model=list[LineHealth])
async def health_lines(user: CurrentUser, svc: ServicesDep, monitor: MonitorDep) -> list[LineHealth]:
    """Per line: cameras by state, open alerts, availability and MTTR over 1 h / 24 h / 7 d."""
    allowed = visible_lines(user)
    lines = [
        (ln.id, ln.name_zh, ln.name_en) for ln in svc.settings.lines if allowed is None or ln.id in allowed
    ]
    ids = {ln[0] for ln in lines}
    cameras = [c for c in await svc.registry.all() if c.line in ids]
    return await line_rows(monitor, cameras, lines)


@router.get("/api/cameras/{camera_id}/health")
async def camera_health(
    camera: VisibleCamera, user: CurrentUser, svc: ServicesDep, monitor: MonitorDep
) -> dict[str, Any]:
    """Current checks with their measured values, recent transitions, availability, alerts."""
    detail = await camera_detail(monitor, camera)
    if not _detail(user):
        detail["last_error"] = None
    return detail
