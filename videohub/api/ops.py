"""Liveness and readiness for orchestrators and the Docker healthcheck."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from videohub.api.deps import ServicesDep

router = APIRouter(tags=["operations"])

EMBEDDED_DOWN_LIMIT = 30.0
"""Seconds the embedded Valkey may stay dead (its watchdog failing to restart it) before /healthz fails."""


@router.get("/healthz", response_model=None)
async def healthz(svc: ServicesDep) -> JSONResponse:
    """The process is up and answering, and its embedded Valkey (if any) is not dead beyond repair.

    An external Redis being away is not the process's fault: that is /readyz's business.
    """
    down = svc.store.down_for()
    if down > EMBEDDED_DOWN_LIMIT:
        body = {"status": "failing", "redis": f"embedded valkey down for {down:.0f} s"}
        return JSONResponse(body, status_code=503)
    return JSONResponse({"status": "ok"})


@router.get("/readyz", response_model=None)
async def readyz(svc: ServicesDep) -> JSONResponse:
    """Ready when Redis answers; 503 with Retry-After while it does not."""
    if await svc.store.ping():
        return JSONResponse({"status": "ready", "redis": "ok"})
    return JSONResponse(
        {"status": "not ready", "redis": "unreachable"}, status_code=503, headers={"Retry-After": "2"}
    )
