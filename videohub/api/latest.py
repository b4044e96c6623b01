"""The latest picture of a camera: ``GET /api/cameras/{id}/latest.jpg`` (issue 16, a picture at once).

A wall tile asks for it the moment a camera is assigned, before its live feed plays. It is read from
Redis (``videohub.hub.latest``) and never starts the stream or waits for the camera, so it answers
in milliseconds even for an ``on_demand`` camera nobody watches. Readable by every role that may see
the camera (``visible_camera``: a line admin only their line's; others are 404).
"""

from __future__ import annotations

import time
from typing import Annotated, Literal

from fastapi import APIRouter, Query
from fastapi.responses import Response

from videohub.api.deps import ServicesDep, VisibleCamera
from videohub.errors import NotFound

router = APIRouter(tags=["ingest"])


@router.get(
    "/api/cameras/{camera_id}/latest.jpg",
    response_class=Response,
    responses={
        200: {
            "content": {"image/jpeg": {}},
            "description": "The latest picture seen of the stream (or of the other stream). "
            "`X-Captured-At`: when it was taken (Unix seconds); `X-Picture-Age`: seconds since; "
            "`X-Picture-Stream`: main or sub; `X-Picture-Source`: probe, keyframe or snapshot.",
        },
        404: {"description": "Unknown camera, or no picture of it has been seen yet."},
    },
)
async def camera_latest_picture(
    camera: VisibleCamera,
    svc: ServicesDep,
    stream: Annotated[Literal["main", "sub"], Query(description="Which stream")] = "main",
) -> Response:
    """The latest picture of the camera from a probe, a health sample or a snapshot; never starts it."""
    picture = await svc.pictures.get(camera, stream)
    if picture is None:
        raise NotFound(f"no picture of camera {camera.id!r} has been seen yet")
    now = time.time()
    headers = {
        "Cache-Control": "no-store",
        "X-Captured-At": f"{picture.captured_at:.3f}",
        "X-Picture-Age": f"{picture.age(now):.1f}",
        "X-Picture-Stream": picture.stream,
        "X-Picture-Source": picture.source,
    }
    return Response(content=picture.jpeg, media_type="image/jpeg", headers=headers)
