"""The cap on HTTP requests handled at once: a full server answers 503 with Retry-After, it does not queue.

uvicorn's own ``limit_concurrency`` answers a bare 503 (no Retry-After) and counts WebSockets and open
connections together with requests, so one page's long-lived ``/ws`` would take a request slot.
"""

from __future__ import annotations

import logging

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Receive, Scope, Send

from videohub.http.bodies import send_error
from videohub.http.budget import RefusalLog

log = logging.getLogger(__name__)

UNCOUNTED_PATHS = frozenset({"/healthz"})
"""Liveness answers even when the server is full: a busy service is alive, and must not be restarted."""


class RequestAdmission:
    """ASGI middleware: at most ``max_requests`` HTTP requests inside the app at once (per process).

    WebSockets pass uncounted: each open page holds one for as long as it is open. Sits inside CORS and
    outside the body limits, so a refused request costs neither a body read nor a token check.
    """

    def __init__(self, app: ASGIApp, *, max_requests: int, retry_after: int) -> None:
        self.app = app
        self.max_requests = max_requests
        self.retry_after = retry_after
        self.active = 0
        self._refusals = RefusalLog(log, f"requests beyond server.limits.max_requests ({max_requests})")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in UNCOUNTED_PATHS:
            await self.app(scope, receive, send)
            return
        if self.active >= self.max_requests:
            self._refusals.refused()
            busy = HTTPException(
                503,
                detail=f"the server is handling {self.max_requests} requests at once "
                "(server.limits.max_requests): retry later",
                headers={"Retry-After": str(self.retry_after)},
            )
            await send_error(send, busy)
            return
        self.active += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.active -= 1
