"""Ingest state of a camera and its snapshot: ``GET /api/cameras/{id}/ingest``, ``.../snapshot.jpg``.

Both are readable by every role that may see the camera (``visible_camera``: a line admin sees
only their line's cameras, others see all). A line admin gets the reason a stream fails (refused,
unreachable, auth_failed, not_found, timeout …), which is what a camera owner needs, but not FFmpeg's
error text: admin and maintenance keep that detail.

In a cluster both are served by the worker that ingests the camera (``Router.elsewhere``: the owner
of its main stream for the ingest state, of the asked stream for the snapshot); the node asked
forwards the request there, and ``worker`` in the ingest state names it.
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field

from videohub.api.deps import CurrentUser, RouterDep, ServicesDep, VisibleCamera, hub
from videohub.api.workers import worker_id
from videohub.errors import NoPicture, NotOwner
from videohub.hub.manager import FeedStats

router = APIRouter(tags=["ingest"])


class CameraIngestOut(BaseModel):
    camera_id: str
    enabled: bool
    mode: str
    worker: str = Field(description="The worker that ingests the camera (and serves its viewers).")
    streams: list[FeedStats] = Field(description="Per stream: state, viewers and ingest stats.")


class NoPictureOut(BaseModel):
    detail: str
    reason: str


def _stream_out(stats: FeedStats, *, detail: bool) -> FeedStats:
    if stats.ingest is None or detail:
        return stats
    return replace(stats, ingest=replace(stats.ingest, last_error=None))


@router.get("/api/cameras/{camera_id}/ingest", response_model=CameraIngestOut)
async def camera_ingest(
    request: Request, camera: VisibleCamera, user: CurrentUser, svc: ServicesDep, cluster: RouterDep
) -> CameraIngestOut | Response:
    """Per-stream ingest state and packet-level stats of one camera."""
    if cluster is not None and (owner := await cluster.elsewhere(camera.id)) is not None:
        return await cluster.forward(request, owner)
    feeds = hub(svc)
    stats = feeds.stats(camera.id)
    if not stats and camera.enabled:
        await feeds.apply(camera.id)  # registered a moment ago; the change feed has not caught up yet
        stats = feeds.stats(camera.id)
    return CameraIngestOut(
        camera_id=camera.id,
        enabled=camera.enabled,
        mode=camera.mode,
        worker=worker_id(svc),
        streams=[
            _stream_out(stats[name], detail=user.role != "line_admin")
            for name in ("main", "sub")
            if name in stats
        ],
    )


@router.get(
    "/api/cameras/{camera_id}/snapshot.jpg",
    response_class=Response,
    responses={
        200: {"content": {"image/jpeg": {}}, "description": "JPEG of the latest keyframe."},
        503: {"model": NoPictureOut, "description": "No picture now; `reason` says why."},
    },
)
async def camera_snapshot(
    request: Request,
    camera: VisibleCamera,
    svc: ServicesDep,
    cluster: RouterDep,
    stream: Annotated[Literal["main", "sub"], Query(description="Which stream")] = "main",
) -> Response:
    """JPEG of the stream's latest keyframe (decoded on demand, cached briefly)."""
    if cluster is not None and (owner := await cluster.elsewhere(camera.id, stream)) is not None:
        return await cluster.forward(request, owner)
    try:
        jpeg = await hub(svc).snapshot(camera.id, stream)
    except NotOwner as exc:  # the lease moved after the question above
        if cluster is None:
            raise
        return await cluster.forward(request, cluster.moved(exc))
    except NoPicture as exc:
        return JSONResponse(
            NoPictureOut(detail=exc.message, reason=exc.reason).model_dump(),
            status_code=503,
            headers={"Retry-After": str(exc.retry_after)},
        )
    # The wall's latest picture, from the decode just done.
    await svc.pictures.put(camera, stream, jpeg, time.time(), "snapshot")
    return Response(content=jpeg, media_type="image/jpeg", headers={"Cache-Control": "no-store"})
