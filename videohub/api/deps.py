"""FastAPI dependencies shared by every router: the services container, its optional parts and the caller.

One typed dependency per optional part (``HubDep``, ``WarmDep``, ``SessionsDep``, ``MonitorDep``,
``AlertsDep``) answers 503 when the part is not running; routers take the part, never
``svc.<part>`` with a guard. ``RouterDep`` is the exception: None is a normal answer (one plain
process, no cluster), and a router that gets None serves the request itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from videohub.alerts.service import AlertService
from videohub.cluster.routing import Router, client_ip
from videohub.errors import Unauthorized, Unavailable
from videohub.health.monitor import HealthMonitor
from videohub.hub.manager import FeedManager
from videohub.hub.warm import WarmHolds
from videohub.models import Camera, User
from videohub.policy import check_camera_visible
from videohub.services import Services
from videohub.users import TokenRef
from videohub.webrtc.manager import SessionManager


def services(request: Request) -> Services:
    svc: Services = request.app.state.services
    return svc


ServicesDep = Annotated[Services, Depends(services)]


def hub(svc: ServicesDep) -> FeedManager:
    if svc.hub is None:
        raise Unavailable("ingest is not running on this worker")
    return svc.hub


def warm(svc: ServicesDep) -> WarmHolds:
    if svc.warm is None:
        raise Unavailable("ingest is not running on this worker")
    return svc.warm


def sessions(svc: ServicesDep) -> SessionManager:
    if svc.sessions is None:
        raise Unavailable("WHEP playback is not running on this worker")
    return svc.sessions


def monitor(svc: ServicesDep) -> HealthMonitor:
    if svc.health is None:
        raise Unavailable("the health monitor is not running")
    return svc.health


def alerts(svc: ServicesDep) -> AlertService:
    if svc.alerts is None:
        raise Unavailable("alerts are not running")
    return svc.alerts


def router(svc: ServicesDep) -> Router | None:
    return svc.router


HubDep = Annotated[FeedManager, Depends(hub)]
WarmDep = Annotated[WarmHolds, Depends(warm)]
SessionsDep = Annotated[SessionManager, Depends(sessions)]
MonitorDep = Annotated[HealthMonitor, Depends(monitor)]
AlertsDep = Annotated[AlertService, Depends(alerts)]
RouterDep = Annotated[Router | None, Depends(router)]
"""The cluster's request router; None when this process serves everything itself."""


def bearer_token(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return None


@dataclass(frozen=True)
class Login:
    """The caller and the token they came with (sessions they start end with that token's login)."""

    user: User
    token: TokenRef


async def current_login(request: Request, svc: ServicesDep) -> Login:
    """The caller, from ``Authorization: Bearer <token>``; 401 when absent, unknown or expired."""
    token = bearer_token(request)
    if token is None:
        raise Unauthorized("missing bearer token")
    found = await svc.users.authenticate(token)
    if found is None:
        raise Unauthorized("invalid or expired token")
    return Login(*found)


CurrentLogin = Annotated[Login, Depends(current_login)]


async def current_user(login: CurrentLogin) -> User:
    return login.user


CurrentUser = Annotated[User, Depends(current_user)]


def client_address(request: Request) -> str:
    """The caller's address as the server socket saw it; for a request another node of the cluster
    forwarded (it carries the cluster secret), the address that node saw. No other header is trusted."""
    svc: Services = request.app.state.services
    return client_ip(request, svc.cluster)


async def visible_camera(camera_id: str, user: CurrentUser, svc: ServicesDep) -> Camera:
    """The camera named in the path, if this caller may see it (404 otherwise)."""
    camera = await svc.registry.require(camera_id)
    check_camera_visible(user, camera_id, camera.line)
    return camera


VisibleCamera = Annotated[Camera, Depends(visible_camera)]
