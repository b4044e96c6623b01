"""Ingest state of a camera and its snapshot: ``GET /api/cameras/{id}/ingest``, ``.../snapshot.jpg``.

Both are readable by every role that may see the camera (``visible_camera``: a line admin sees
only their line's cameras, others see all). A line admin gets the reason a stream fails (refused,
unreachable, auth_failed, not_found, timeout …), which is what a camera owner needs, but not FFmpeg's
error text: admin and maintenance keep that detail.
"""

from __future__ import annotations

import time
from typing import Annotated, Literal

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field

from videohub.api.deps import CurrentUser, ServicesDep, VisibleCamera
from videohub.errors import Unavailable
from videohub.hub.manager import FeedManager, FeedStats
from videohub.hub.snapshot import NoPicture

router = APIRouter(tags=["ingest"])


class IngestStatsOut(BaseModel):
    """Packet-level stats of the current (or last) ingest session of one stream."""

    codec: str | None = Field(description="The camera's codec (h264, hevc, mjpeg …).")
    profile: str | None
    width: int | None
    height: int | None
    fps: float
    bitrate_kbps: float
    keyframe_interval: float | None = Field(description="Seconds between the last two keyframes.")
    mode: str | None = Field(description="passthrough or transcode.")
    output_codec: str
    packets: int
    bytes: int
    drops: int = Field(description="Packets the ingest discarded (before a keyframe, unreadable, fps cap).")
    reconnects: int
    failures: int = Field(description="Consecutive failed sessions (drives the backoff).")
    retry_in: float | None = Field(description="Seconds to the next connection attempt while backing off.")
    last_packet_age: float | None = Field(description="Seconds since the last packet.")
    last_packet_at: float | None = Field(description="Wall-clock time of the last packet (Unix seconds).")
    last_error: str | None = Field(description="The error's text (not shown to a line admin).")
    last_error_reason: str | None


class StreamIngestOut(BaseModel):
    stream: Literal["main", "sub"]
    url: str = Field(description="Stream URL without credentials.")
    transport: str
    state: str = Field(description="connecting, streaming, backing_off, idle (on_demand, unwatched).")
    reason: str | None = Field(
        description="Why it is backing off: auth_failed, not_found, refused, unreachable, timeout, "
        "stalled, unsupported_codec, blocked (the URL was refused before opening), eof, error."
    )
    always_on: bool
    subscribers: int
    subscriber_drops: int = Field(description="Packets viewers lost by falling behind.")
    gop_packets: int = Field(description="Packets a new viewer receives at once.")
    ingest: IngestStatsOut | None


class CameraIngestOut(BaseModel):
    camera_id: str
    enabled: bool
    mode: str
    streams: list[StreamIngestOut]


class NoPictureOut(BaseModel):
    detail: str
    reason: str


def _hub(svc: ServicesDep) -> FeedManager:
    hub = svc.hub
    if not isinstance(hub, FeedManager):
        raise Unavailable("ingest is not running on this worker")
    return hub


def _stream_out(stats: FeedStats, *, detail: bool) -> StreamIngestOut:
    ingest = IngestStatsOut.model_validate(stats.ingest.as_dict()) if stats.ingest is not None else None
    if ingest is not None and not detail:
        ingest.last_error = None
    return StreamIngestOut(
        stream="sub" if stats.stream == "sub" else "main",
        url=stats.url,
        transport=stats.transport,
        state=stats.state,
        reason=stats.reason,
        always_on=stats.always_on,
        subscribers=stats.subscribers,
        subscriber_drops=stats.subscriber_drops,
        gop_packets=stats.gop_packets,
        ingest=ingest,
    )


@router.get("/api/cameras/{camera_id}/ingest", response_model=CameraIngestOut)
async def camera_ingest(camera: VisibleCamera, user: CurrentUser, svc: ServicesDep) -> CameraIngestOut:
    """Per-stream ingest state and packet-level stats of one camera."""
    hub = _hub(svc)
    stats = hub.stats(camera.id)
    if not stats and camera.enabled:
        await hub.apply(camera.id)  # registered a moment ago; the change feed has not caught up yet
        stats = hub.stats(camera.id)
    return CameraIngestOut(
        camera_id=camera.id,
        enabled=camera.enabled,
        mode=camera.mode,
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
    camera: VisibleCamera,
    svc: ServicesDep,
    stream: Annotated[Literal["main", "sub"], Query(description="Which stream")] = "main",
) -> Response:
    """JPEG of the stream's latest keyframe (decoded on demand, cached briefly)."""
    hub = _hub(svc)
    try:
        jpeg = await hub.snapshot(camera.id, stream)
    except NoPicture as exc:
        return JSONResponse(
            NoPictureOut(detail=exc.message, reason=exc.reason).model_dump(),
            status_code=503,
            headers={"Retry-After": str(exc.retry_after)},
        )
    if svc.pictures is not None:  # the wall's latest picture (issue 16), from the decode just done
        await svc.pictures.put(camera, stream, jpeg, time.time(), "snapshot")
    return Response(content=jpeg, media_type="image/jpeg", headers={"Cache-Control": "no-store"})
