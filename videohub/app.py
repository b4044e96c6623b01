"""The FastAPI application: ``build_app`` wires settings, store and services; one lifespan owns them.

``videohub.services.build_services`` builds every part; the lifespan enters them on one
``AsyncExitStack`` (ingest, WHEP sessions, alert delivery, health) and leaves them in reverse order, so
a test or the CLI gets a clean start and a clean stop.
"""

from __future__ import annotations

import logging
import secrets
import sys
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any, cast

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse, Response
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ReadOnlyError
from redis.exceptions import TimeoutError as RedisTimeoutError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ExceptionHandler
from starlette.websockets import WebSocket

from videohub.api import (
    alerts,
    audit,
    auth,
    cameras,
    health,
    ingest,
    latest,
    metrics,
    ops,
    sessions,
    users,
    walls,
    warm,
    web,
    whep,
    workers,
    ws,
)
from videohub.errors import InvalidField, RateLimited, Unavailable, VideohubError
from videohub.http.admission import RequestAdmission
from videohub.http.bodies import BodyLimits
from videohub.services import Parts, build_services
from videohub.settings import Settings
from videohub.store import OutageLog, Store
from videohub.users import UserStore

log = logging.getLogger(__name__)


async def ensure_admin(settings: Settings, users: UserStore) -> None:
    """Create user ``admin`` at first start (VIDEOHUB_ADMIN_PASSWORD, else a random one printed once)."""
    if await users.has_admin():
        return
    if settings.admin_password is not None:
        await users.create("admin", settings.admin_password.get_secret_value(), "admin")
        log.info("created user admin from VIDEOHUB_ADMIN_PASSWORD")
        return
    password = secrets.token_urlsafe(12)
    await users.create("admin", password, "admin")
    # Printed to the terminal once, deliberately not through logging (logs never carry secrets).
    print(f"videohub: created user 'admin' with password: {password}", file=sys.stderr, flush=True)


def _error_body(exc: VideohubError) -> dict[str, Any]:
    if isinstance(exc, InvalidField):
        return {"detail": [{"loc": list(exc.loc), "msg": exc.message, "type": "value_error"}]}
    return {"detail": exc.message}


def _error_response(exc: VideohubError) -> JSONResponse:
    headers = {}
    if isinstance(exc, RateLimited | Unavailable):
        headers["Retry-After"] = str(exc.retry_after)
    if exc.status == 401:
        headers["WWW-Authenticate"] = "Bearer"
    return JSONResponse(_error_body(exc), status_code=exc.status, headers=headers)


STORE_UNAVAILABLE = "the store (Redis) is unreachable; retry shortly"
STORE_RETRY_AFTER = 2


def _raised_by_redis(exc: BaseException) -> bool:
    """Whether the exception came out of the Redis client (an OSError of its socket)."""
    tb = exc.__traceback__
    while tb is not None:
        if str(tb.tb_frame.f_globals.get("__name__", "")).startswith("redis."):
            return True
        tb = tb.tb_next
    return False


def install_error_handlers(app: FastAPI) -> None:
    outage = OutageLog(log, "api")

    @app.exception_handler(VideohubError)
    async def _videohub_error(request: Request, exc: VideohubError) -> JSONResponse:
        return _error_response(exc)

    async def _store_unavailable(conn: Request | WebSocket, exc: Exception) -> Response | None:
        # A Redis outage is a 503 with Retry-After on every route, never a 500 (the media keeps flowing).
        outage.failed(exc)
        if isinstance(conn, WebSocket):  # /ws handles outages itself; this is a last resort
            await conn.close(1013, "try again later")
            return None
        return _error_response(Unavailable(STORE_UNAVAILABLE, retry_after=STORE_RETRY_AFTER))

    async def _os_error(conn: Request | WebSocket, exc: Exception) -> Response | None:
        if not _raised_by_redis(exc):
            raise exc  # not the store's: a bug, answered 500 by the server error middleware
        return await _store_unavailable(conn, exc)

    # BusyLoadingError (Redis still loading its AOF) and the pool's "no connection available" are
    # ConnectionErrors.
    # Starlette calls a handler with the Request, or the WebSocket on a websocket route; its type
    # names the two cases apart, these handlers take both.
    for cls, handler in (
        (RedisConnectionError, _store_unavailable),
        (RedisTimeoutError, _store_unavailable),
        (ReadOnlyError, _store_unavailable),  # a write that reached a primary demoted by a failover
        (OSError, _os_error),
    ):
        app.add_exception_handler(cls, cast(ExceptionHandler, handler))

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        # FastAPI's default echoes the offending input, which may be a password: send loc and msg only.
        detail = [
            {
                "loc": list(err.get("loc", ())),
                "msg": str(err.get("msg", "")).removeprefix("Value error, "),
                "type": err.get("type", "value_error"),
            }
            for err in exc.errors()
        ]
        return JSONResponse({"detail": detail}, status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=exc.headers)


def build_app(
    settings: Settings,
    *,
    store: Store | None = None,
    parts: Parts | None = None,
) -> FastAPI:
    """The whole service as an ASGI app.

    ``store`` injects an open Store (tests share one Valkey); without it the lifespan opens one from
    settings (external Redis or the embedded Valkey) and closes it at shutdown. ``parts`` names the
    optional parts that run (all by default: Feed hub, WHEP, health and alerts).
    """

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            own_store = store is None
            active = store or await Store.open(settings.redis_url, settings.server.data_dir, settings.store)
            if own_store:
                stack.push_async_callback(active.close)
                await stack.enter_async_context(active.supervised(settings.store.watchdog_interval_seconds))
            svc = build_services(settings, active, parts)
            stack.callback(svc.users.close)  # the password threads
            await stack.enter_async_context(svc.live)
            app.state.services = svc
            await ensure_admin(settings, svc.users)
            await svc.registry.migrate()  # records of older versions, before ingest reads them
            for part in svc.parts():  # ingest first, then what reads it; left in reverse
                await stack.enter_async_context(part)
            log.info("videohub ready")
            yield
            log.info("videohub stopping")

    app = FastAPI(
        title="videohub",
        version="0.1.0",
        summary="Camera feed aggregation for a command center: registry, WHEP playback, video wall, health.",
        lifespan=lifespan,
    )
    install_error_handlers(app)
    # Inside CORS (added after them, so outer), so that a 413 or 503 still carries the CORS headers.
    limits = settings.server.limits
    app.add_middleware(BodyLimits, limits=limits)
    app.add_middleware(
        RequestAdmission, max_requests=limits.max_requests, retry_after=limits.retry_after_seconds
    )
    if settings.server.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.server.cors_origins,
            allow_methods=["GET", "POST", "PATCH", "PUT", "DELETE", "OPTIONS"],
            allow_headers=["Authorization", "Content-Type", "If-Match"],
            expose_headers=["Location", "ETag", "Link", "Accept-Post", "Accept-Patch"],
        )
    for module in (
        ops,
        auth,
        cameras,
        users,
        audit,
        ingest,
        latest,
        warm,
        whep,
        sessions,
        health,
        alerts,
        metrics,
        workers,
        walls,
        ws,
        web,
    ):
        app.include_router(module.router)
    return app
