"""Request body limits, enforced while the body is read (ASGI middleware, before routing and auth).

    BodyLimits (ASGI middleware)
    ├── Content-Length over the route's limit → 413 at once; the app (auth included) never runs
    ├── streamed (chunked) bytes counted as they arrive → 413 as soon as the limit is passed
    ├── the whole body within ``body_timeout`` of the request's start → else 408
    └── a response sent before the body was read whole closes the connection (nobody drains it)

The limit depends on the route, not on the client's Content-Type: SDP for WHEP, CSV for the camera
import, JSON for the rest of ``/api/``, and a small one for everything else (login included). The 413
names the limit: ``detail[{"loc": ["body"], "msg": "... larger than 64 KiB ...", "type": "too_large"}]``.
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass

from fastapi import HTTPException
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from videohub.http.budget import RefusalLog
from videohub.settings.http import KIB, MIB, HttpLimitSettings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BodyLimit:
    """The largest body a route accepts, and the kind of body it is (named in the 413)."""

    max_bytes: int
    kind: str

    @property
    def human(self) -> str:
        if self.max_bytes % MIB == 0:
            return f"{self.max_bytes // MIB} MiB"
        if self.max_bytes % KIB == 0:
            return f"{self.max_bytes // KIB} KiB"
        return f"{self.max_bytes} bytes"

    def message(self) -> str:
        return f"request body larger than {self.human} ({self.max_bytes} bytes), the limit for {self.kind}"


def body_limit_for(method: str, path: str, limits: HttpLimitSettings) -> BodyLimit:
    """The body limit of one route. Unknown routes get the small limit: nothing large by accident."""
    if path.startswith("/whep/"):
        return BodyLimit(limits.sdp_body_bytes, "SDP offers and trickle fragments")
    if method == "POST" and path == "/api/cameras/import":
        return BodyLimit(limits.csv_body_bytes, "the camera CSV import")
    if path.startswith("/api/") and not path.startswith("/api/auth/"):
        return BodyLimit(limits.json_body_bytes, "JSON API requests")
    return BodyLimit(limits.other_body_bytes, "this route")


class BodyTooLarge(HTTPException):
    """Raised from ``receive`` when a streamed body passes its limit (413; the connection is closed).

    An HTTPException, so that FastAPI's body reader re-raises it instead of turning it into a 400, and
    the app's handler answers it with this same body when the app was the one reading.
    """

    def __init__(self, limit: BodyLimit) -> None:
        super().__init__(
            413,
            detail=[{"loc": ["body"], "msg": limit.message(), "type": "too_large"}],
            headers={"Connection": "close"},
        )


class BodyTimeout(HTTPException):
    """Raised from ``receive`` when the body has not arrived within ``body_timeout`` (408, closed)."""

    def __init__(self, seconds: float) -> None:
        super().__init__(
            408,
            detail=f"request body not received within {seconds:g} s (server.limits.body_timeout)",
            headers={"Connection": "close"},
        )


def _content_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:  # the HTTP parser (h11) refuses these; an in-process client might not
                return None
    return None


def _chunked(scope: Scope) -> bool:
    return any(name == b"transfer-encoding" for name, _ in scope["headers"])


async def send_error(send: Send, error: StarletteHTTPException) -> None:
    """Answer with ``error`` as the app's handlers would: ``{"detail": ...}`` and its headers."""
    body = json.dumps({"detail": error.detail}, ensure_ascii=False).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    headers += [(k.lower().encode(), v.encode()) for k, v in (error.headers or {}).items()]
    await send({"type": "http.response.start", "status": error.status_code, "headers": headers})
    await send({"type": "http.response.body", "body": body, "more_body": False})


class BodyLimits:
    """ASGI middleware in front of the whole app: bounds every request body before anyone buffers it.

    Sits inside CORS (so a 413 carries the CORS headers a browser needs to read it) and outside
    everything else: the router, FastAPI's body reader and the auth dependencies only ever see a body
    within its route's limit.
    """

    def __init__(self, app: ASGIApp, limits: HttpLimitSettings) -> None:
        self.app = app
        self.limits = limits
        self._refusals = RefusalLog(log, "request bodies over their limit")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = body_limit_for(scope["method"], scope["path"], self.limits)
        length = _content_length(scope)
        if length is not None and length > limit.max_bytes:
            self._refusals.refused(f" (last: Content-Length {length} on {scope['method']} {scope['path']})")
            await send_error(send, BodyTooLarge(limit))
            return
        await _LimitedRequest(self, limit, length, receive, send).run(scope)


class _LimitedRequest:
    """One request's body accounting: bytes seen, whether the body is complete, the deadline."""

    def __init__(
        self, owner: BodyLimits, limit: BodyLimit, length: int | None, receive: Receive, send: Send
    ) -> None:
        self.owner = owner
        self.limit = limit
        self._receive = receive
        self._send = send
        self.received = 0
        # No Content-Length and no chunking means no body (RFC 9112 §6.3), as does Content-Length 0.
        self.complete = length == 0
        self.deadline = asyncio.get_running_loop().time() + owner.limits.body_timeout
        self.error: HTTPException | None = None
        self.response_started = False

    async def run(self, scope: Scope) -> None:
        if _content_length(scope) is None and not _chunked(scope):
            self.complete = True
        try:
            await self.owner.app(scope, self.receive, self.send)
        except (BodyTooLarge, BodyTimeout) as exc:
            if self.response_started:
                return  # the connection is closed by the server as the response cannot finish
            await send_error(self._send, exc)

    async def receive(self) -> Message:
        if self.error is not None:
            raise self.error
        if self.complete:
            return await self._receive()  # after the body: only http.disconnect, no deadline
        try:
            async with asyncio.timeout_at(self.deadline):
                message = await self._receive()
        except TimeoutError:
            self.owner._refusals.refused(" (last: body deadline passed)")
            self.error = BodyTimeout(self.owner.limits.body_timeout)
            raise self.error from None
        if message["type"] == "http.request":
            self.received += len(message.get("body", b""))
            if self.received > self.limit.max_bytes:
                self.owner._refusals.refused(f" (last: {self.received} bytes streamed)")
                self.error = BodyTooLarge(self.limit)
                raise self.error
            if not message.get("more_body", False):
                self.complete = True
        else:
            self.complete = True
        return message

    async def send(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.response_started = True
            if not self.complete:
                # Answered before its body was read (a 401, a 404, a 415): rather than let the server
                # read and discard a body that may be huge or dripped, close once the response is out.
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"connection"]
                message = {**message, "headers": [*headers, (b"connection", b"close")]}
        await self._send(message)
