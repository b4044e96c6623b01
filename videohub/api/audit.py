"""The audit trail, newest first (admin only)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from videohub.api.deps import CurrentUser, ServicesDep
from videohub.models import AuditPage
from videohub.policy import check_role

router = APIRouter(prefix="/api/audit", tags=["audit"])


@router.get("", response_model=AuditPage)
async def list_audit(
    user: CurrentUser,
    svc: ServicesDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    before: Annotated[str | None, Query(pattern=r"^\d+-\d+$", description="Entry id to page from")] = None,
    action: Annotated[str | None, Query(max_length=64)] = None,
) -> AuditPage:
    check_role(user, "admin")
    return await svc.audit.page(limit=limit, before=before, action=action)
