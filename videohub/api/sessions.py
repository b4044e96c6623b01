"""Live WHEP viewing sessions, for administrators and maintenance staff.

In a cluster the list is every worker's: the node asked gathers each live worker's own sessions
(``?local=1`` with the cluster secret, ``videohub.cluster.routing``) and merges them; each row names its
``worker``. A worker that does not answer does not fail the list: its id is named in the
``X-Videohub-Missing-Workers`` header (comma-separated). The body stays a list, as every client of
this endpoint (the console, the benches) reads it.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from pydantic import Field

from videohub.api.deps import CurrentUser, RouterDep, ServicesDep, sessions
from videohub.api.workers import worker_id
from videohub.cluster.routing import internal, json_rows
from videohub.policy import check_role
from videohub.webrtc.session import SessionInfo

router = APIRouter(tags=["whep"])

MISSING_WORKERS = "X-Videohub-Missing-Workers"


class SessionRow(SessionInfo):
    worker: str = Field(description="The worker that holds the session (and sends its media).")


@router.get("/api/sessions", response_model=list[SessionRow])
async def list_sessions(
    request: Request,
    response: Response,
    user: CurrentUser,
    svc: ServicesDep,
    cluster_router: RouterDep,
    local: Annotated[bool, Query(description="Only this worker's (for the cluster's own requests)")] = False,
) -> list[SessionRow]:
    """Who watches which camera and stream right now: duration, bytes sent, drops (oldest first)."""
    check_role(user, "admin", "maintenance")
    here = worker_id(svc)
    if cluster_router is None or svc.sessions is not None:
        rows = [SessionRow(**s.model_dump(), worker=here) for s in sessions(svc).sessions()]
    else:
        rows = []  # an --role api node holds no sessions
    if cluster_router is not None and not (local and internal(request, cluster_router.cluster)):
        gathered = await cluster_router.gather(request, "/api/sessions")
        for answer in gathered.answers.values():
            rows += [SessionRow.model_validate(row) for row in json_rows(answer)]
        if gathered.missing:
            response.headers[MISSING_WORKERS] = ",".join(gathered.missing)
    return sorted(rows, key=lambda s: s.started_at)
