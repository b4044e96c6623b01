"""Live WHEP viewing sessions, for administrators and maintenance staff."""

from __future__ import annotations

from fastapi import APIRouter

from videohub.api.deps import CurrentUser, ServicesDep, SessionsDep
from videohub.policy import check_role
from videohub.webrtc.session import SessionInfo

router = APIRouter(tags=["whep"])


@router.get("/api/sessions", response_model=list[SessionInfo])
async def list_sessions(user: CurrentUser, svc: ServicesDep, manager: SessionsDep) -> list[SessionInfo]:
    """Who watches which camera and stream right now: duration, bytes sent, drops (oldest first)."""
    check_role(user, "admin", "maintenance")
    items = manager.sessions()
    return sorted(items, key=lambda s: s.started_at)
