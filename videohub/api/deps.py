"""FastAPI dependencies shared by every router: the services container and the caller."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from videohub.errors import Unauthorized
from videohub.models import Camera, User
from videohub.policy import check_camera_visible
from videohub.services import Services


def services(request: Request) -> Services:
    svc: Services = request.app.state.services
    return svc


ServicesDep = Annotated[Services, Depends(services)]


def bearer_token(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return None


async def current_user(request: Request, svc: ServicesDep) -> User:
    """The caller, from ``Authorization: Bearer <token>``; 401 when absent, unknown or expired."""
    token = bearer_token(request)
    if token is None:
        raise Unauthorized("missing bearer token")
    user = await svc.users.user_for_token(token)
    if user is None:
        raise Unauthorized("invalid or expired token")
    return user


CurrentUser = Annotated[User, Depends(current_user)]


async def visible_camera(camera_id: str, user: CurrentUser, svc: ServicesDep) -> Camera:
    """The camera named in the path, if this caller may see it (404 otherwise)."""
    camera = await svc.registry.require(camera_id)
    check_camera_visible(user, camera_id, camera.line)
    return camera


VisibleCamera = Annotated[Camera, Depends(visible_camera)]
