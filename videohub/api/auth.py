"""Login, refresh, logout and "who am I"; each login, failed login, refresh and logout is audited.

Audited with the caller's address. A login whose audit entry cannot be written is refused (503, no
token): an unaudited way in is worse than a retry.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from pydantic import Field

from videohub.api.deps import CurrentLogin, CurrentUser, ServicesDep, bearer_token, client_address
from videohub.errors import Unauthorized
from videohub.models import LoginRequest, TokenOut, User
from videohub.policy import Rights, rights_of
from videohub.users import audit_name

router = APIRouter(prefix="/api/auth", tags=["auth"])


@router.post("/login", response_model=TokenOut)
async def login(body: LoginRequest, request: Request, svc: ServicesDep) -> TokenOut:
    """A bearer token for a correct password. 429 + Retry-After while this user or this address must
    wait (the password is not checked then), 503 + Retry-After when too many logins are being checked."""
    address = client_address(request)
    check = await svc.users.check_login(body.username, body.password.get_secret_value(), address)
    if check.user is None:
        name = audit_name(body.username)
        after: dict[str, object] = {"address": address, "reason": check.reason}
        if check.lockout:
            after["lockout_s"] = check.lockout
        await svc.audit.record(name, "auth.login_failed", name, None, after)
        raise Unauthorized("wrong username or password")
    user = check.user
    await svc.audit.record(user.username, "auth.login", user.username, None, {"address": address})
    token, expires = await svc.users.issue_token(user)
    return TokenOut(access_token=token, expires_at=expires, user=user)


@router.post("/refresh", response_model=TokenOut)
async def refresh(request: Request, user: CurrentUser, svc: ServicesDep) -> TokenOut:
    """A new token for the caller (same user and login, full lifetime); the presented one ends a minute
    later. Viewing sessions and /ws the login started go on."""
    token = bearer_token(request)
    renewed = await svc.users.refresh_token(token) if token else None
    if renewed is None:  # revoked between the dependency's check and here
        raise Unauthorized("token expired or revoked")
    new, expires, who = renewed
    await svc.audit.record(
        who.username, "auth.refresh", who.username, None, {"address": client_address(request)}
    )
    return TokenOut(access_token=new, expires_at=expires, user=who)


@router.post("/logout", status_code=204)
async def logout(request: Request, login: CurrentLogin, svc: ServicesDep) -> None:
    """End this token and its login's older ones (one still in its grace). Unless the login has a
    newer token, the viewing sessions and /ws it started end too (here at once, on other workers
    within their rights sweep)."""
    token = bearer_token(request)
    if token:
        await svc.users.revoke_token(token)
    if svc.sessions is not None and not await svc.users.alive([login.token]):
        await svc.sessions.close_for_token(login.token)
    await svc.audit.record(
        login.user.username, "auth.logout", login.user.username, None, {"address": client_address(request)}
    )


class Me(User):
    rights: Rights = Field(description="What the role may do (the console and health pages read it).")


@router.get("/me", response_model=Me)
async def me(user: CurrentUser) -> Me:
    """The caller, and what their role may do."""
    return Me(**user.model_dump(), rights=rights_of(user))
