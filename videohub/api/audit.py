"""The audit trail, newest first (admin only)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from videohub.api.deps import CurrentUser, ServicesDep
from videohub.errors import InvalidField
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
    if before is not None:
        # A Redis stream id is two unsigned 64-bit numbers; Redis answers an error for anything else.
        ms, seq = (int(part) for part in before.split("-"))
        if ms >= 2**64 or seq >= 2**64:
            raise InvalidField(("query", "before"), "not an audit entry id")
        if ms == 0 and seq == 0:  # nothing is older than the first possible id
            return AuditPage(items=[], next_before=None)
    return await svc.audit.page(limit=limit, before=before, action=action)
