"""Warm-up holds: ``POST /api/cameras/{id}/warm`` and ``DELETE`` (issue 16, tours without black).

A wall about to show a camera (the next tour step, a preset about to be recalled) holds its feed
for a few seconds (``videohub.hub.warm``), so the camera's GOP cache is full when the players come.
A hold is a right to watch: any role that may see the camera (``visible_camera``: a line admin only
their line's, others are 404) may hold it. Bounded per user (429) and per worker (503), at most
30 s per request; asking again extends the hold. In a cluster the hold is taken (and released) on
the worker that ingests the camera stream: the node asked forwards the request there.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from ingest.stats import StreamState
from videohub.api.deps import CurrentUser, RouterDep, ServicesDep, VisibleCamera, hub, warm
from videohub.errors import NotOwner
from videohub.hub.warm import MAX_SECONDS

router = APIRouter(tags=["ingest"])


class WarmIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    stream: Literal["main", "sub"] = Field("sub", description="Which stream (sub falls back to main).")
    seconds: float = Field(10.0, ge=1, le=MAX_SECONDS, description="How long to hold it (extends a hold).")


class WarmOut(BaseModel):
    camera_id: str
    stream: Literal["main", "sub"]
    until: float = Field(description="When the hold ends (Unix seconds).")
    state: str = Field(description="The stream's ingest state now (connecting, streaming …).")


@router.post("/api/cameras/{camera_id}/warm", response_model=WarmOut)
async def warm_camera(
    request: Request,
    camera: VisibleCamera,
    user: CurrentUser,
    svc: ServicesDep,
    cluster: RouterDep,
    body: WarmIn,
) -> WarmOut | Response:
    """Keep the camera's stream pulled for ``seconds``: its players will start from a warm GOP cache."""
    stream = body.stream if body.stream == "main" or camera.streams.sub is not None else "main"
    if cluster is not None and (owner := await cluster.elsewhere(camera.id, stream)) is not None:
        return await cluster.forward(request, owner)
    try:
        hold = await warm(svc).hold(user.username, camera, stream, body.seconds)
    except NotOwner as exc:  # the lease moved after the question above
        if cluster is None:
            raise
        return await cluster.forward(request, cluster.moved(exc))
    stats = hub(svc).stats(camera.id).get(stream)
    return WarmOut(
        camera_id=camera.id,
        stream=stream,
        until=round(hold.until, 3),
        state=stats.state.value if stats else StreamState.IDLE.value,
    )


@router.delete("/api/cameras/{camera_id}/warm", status_code=204)
async def release_camera(
    request: Request,
    camera: VisibleCamera,
    user: CurrentUser,
    svc: ServicesDep,
    cluster: RouterDep,
    stream: Annotated[Literal["main", "sub"], Query(description="Which stream")] = "sub",
) -> Response:
    """End the caller's hold on the camera stream now (the tour moved on); no hold is no error."""
    chosen = stream if stream == "main" or camera.streams.sub is not None else "main"
    if cluster is not None and (owner := await cluster.elsewhere(camera.id, chosen)) is not None:
        return await cluster.forward(request, owner)
    warm(svc).release(user.username, camera.id, chosen)
    return Response(status_code=204)
