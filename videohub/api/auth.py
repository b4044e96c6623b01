"""Login, logout and "who am I"."""

from __future__ import annotations

from fastapi import APIRouter, Request

from videohub.api.deps import CurrentUser, ServicesDep, bearer_token
from videohub.errors import Unauthorized
from videohub.models import LoginRequest, TokenOut, User

router = APIRouter(prefix="/api/auth", tags=["auth"])


@router.post("/login", response_model=TokenOut)
async def login(body: LoginRequest, request: Request, svc: ServicesDep) -> TokenOut:
    address = request.client.host if request.client else "unknown"
    token, expires, user = await svc.users.login(body.username, body.password.get_secret_value(), address)
    return TokenOut(access_token=token, expires_at=expires, user=user)


@router.post("/refresh", response_model=TokenOut)
async def refresh(request: Request, user: CurrentUser, svc: ServicesDep) -> TokenOut:
    """A new token for the caller (same user, full lifetime); the presented one ends a minute later."""
    token = bearer_token(request)
    renewed = await svc.users.refresh_token(token) if token else None
    if renewed is None:  # revoked between the dependency's check and here
        raise Unauthorized("token expired or revoked")
    new, expires, who = renewed
    return TokenOut(access_token=new, expires_at=expires, user=who)


@router.post("/logout", status_code=204)
async def logout(request: Request, user: CurrentUser, svc: ServicesDep) -> None:
    token = bearer_token(request)
    if token:
        await svc.users.revoke_token(token)


@router.get("/me", response_model=User)
async def me(user: CurrentUser) -> User:
    return user
