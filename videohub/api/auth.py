"""Login, logout and "who am I"."""

from __future__ import annotations

from fastapi import APIRouter, Request

from videohub.api.deps import CurrentUser, ServicesDep, bearer_token
from videohub.models import LoginRequest, TokenOut, User

router = APIRouter(prefix="/api/auth", tags=["auth"])


@router.post("/login", response_model=TokenOut)
async def login(body: LoginRequest, request: Request, svc: ServicesDep) -> TokenOut:
    address = request.client.host if request.client else "unknown"
    token, expires, user = await svc.users.login(body.username, body.password.get_secret_value(), address)
    return TokenOut(access_token=token, expires_at=expires, user=user)


@router.post("/logout", status_code=204)
async def logout(request: Request, user: CurrentUser, svc: ServicesDep) -> None:
    token = bearer_token(request)
    if token:
        await svc.users.revoke_token(token)


@router.get("/me", response_model=User)
async def me(user: CurrentUser) -> User:
    return user
