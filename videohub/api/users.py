"""User management (admin only). Every change is audited (never the password); the last admin
cannot be removed (409)."""

from __future__ import annotations

from fastapi import APIRouter, Response

from videohub.api.deps import CurrentUser, ServicesDep
from videohub.models import PasswordChange, User, UserCreate
from videohub.policy import check_role

router = APIRouter(prefix="/api/users", tags=["users"])


@router.get("", response_model=list[User])
async def list_users(user: CurrentUser, svc: ServicesDep) -> list[User]:
    check_role(user, "admin")
    return await svc.users.list()


@router.post("", response_model=User, status_code=201)
async def create_user(body: UserCreate, user: CurrentUser, svc: ServicesDep, response: Response) -> User:
    check_role(user, "admin")
    created = await svc.users.create(body.username, body.password.get_secret_value(), body.role, body.line)
    await svc.audit.record(
        user.username, "user.create", created.username, None, created.model_dump(mode="json")
    )
    response.headers["Location"] = f"/api/users/{created.username}"
    return created


@router.delete("/{username}", status_code=204)
async def delete_user(username: str, user: CurrentUser, svc: ServicesDep) -> None:
    check_role(user, "admin")
    removed = await svc.users.delete(username)
    await svc.audit.record(user.username, "user.delete", username, removed.model_dump(mode="json"), None)
    if svc.sessions is not None:
        # Rights revoked: the user's live viewing sessions end now, not when they next reconnect.
        await svc.sessions.close_for_user(username)


@router.put("/{username}/password", status_code=204)
async def change_password(username: str, body: PasswordChange, user: CurrentUser, svc: ServicesDep) -> None:
    check_role(user, "admin")
    await svc.users.set_password(username, body.password.get_secret_value())
    if svc.sessions is not None:
        # Their tokens are revoked: what those tokens started ends now here, elsewhere at the next sweep.
        await svc.sessions.close_for_user(username, "token_ended")
    await svc.audit.record(user.username, "user.password", username, None, None)
