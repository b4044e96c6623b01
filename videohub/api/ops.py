"""Liveness and readiness for orchestrators and the Docker healthcheck."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from videohub.api.deps import ServicesDep

router = APIRouter(tags=["operations"])


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """The process is up and answering."""
    return {"status": "ok"}


@router.get("/readyz", response_model=None)
async def readyz(svc: ServicesDep) -> JSONResponse:
    """Ready when Redis answers."""
    if await svc.store.ping():
        return JSONResponse({"status": "ready", "redis": "ok"})
    return JSONResponse({"status": "not ready", "redis": "unreachable"}, status_code=503)
