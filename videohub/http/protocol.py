"""uvicorn's HTTP/1.1 protocol (h11) with a header timeout and a cap on open connections.

uvicorn has no header-read timeout: a client that sends ``GET / HTTP/1.1`` and then a byte every few
seconds (slowloris) holds its socket forever, and enough of them exhaust the file descriptors that
the WebRTC UDP sockets and Redis need too. Here each connection arms a timer when it opens and again
when the first byte of a next request arrives on a kept-alive connection; the timer is cancelled once
the request's headers are complete, and closes the connection when it fires. Dripping bytes does not
push it back.

A connection opened while ``max_connections`` are open gets 503 with Retry-After for its request and
is closed (uvicorn's ``limit_concurrency`` would answer without Retry-After). Upgraded WebSockets leave
the count: they are the live-event channel of every open page.

The service pins ``http="h11"`` with this class: the project does not depend on ``httptools``, and
pinning it means a stray install cannot silently swap in a protocol without these guards.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import h11
from starlette.types import Receive, Scope, Send
from uvicorn.config import Config
from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.server import ServerState

from videohub.http.budget import RefusalLog
from videohub.settings.http import HttpLimitSettings

log = logging.getLogger(__name__)

_TIMEOUT_RESPONSE = (
    b"HTTP/1.1 408 Request Timeout\r\ncontent-type: text/plain; charset=utf-8\r\n"
    b"content-length: 38\r\nconnection: close\r\n\r\nrequest headers not received in time\r\n"
)


class ConnectionGauge:
    """Open HTTP connections of one server (one process), shared by its protocol instances."""

    def __init__(self) -> None:
        self.open = 0


def guarded_h11_protocol(limits: HttpLimitSettings) -> type[H11Protocol]:
    """The protocol class to pass as ``uvicorn.Config(http=...)``, bound to ``limits``."""
    gauge = ConnectionGauge()
    timeouts = RefusalLog(log, "connections closed by server.limits.header_timeout")
    over = RefusalLog(log, f"connections beyond server.limits.max_connections ({limits.max_connections})")

    async def unavailable(scope: Scope, receive: Receive, send: Send) -> None:
        body = (
            b'{"detail": "the server has too many open connections (server.limits.max_connections): '
            b'retry later"}'
        )
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"retry-after", str(limits.retry_after_seconds).encode()),
            (b"connection", b"close"),
        ]
        await send({"type": "http.response.start", "status": 503, "headers": headers})
        await send({"type": "http.response.body", "body": body, "more_body": False})

    class GuardedH11Protocol(H11Protocol):
        """One HTTP connection: uvicorn's h11 protocol plus the header timer and the connection count."""

        def __init__(
            self,
            config: Config,
            server_state: ServerState,
            app_state: dict[str, Any],
            _loop: asyncio.AbstractEventLoop | None = None,
        ) -> None:
            super().__init__(config, server_state, app_state, _loop)
            self._header_timer: asyncio.TimerHandle | None = None
            self._counted = False
            self._request_bytes = 0

        # uvicorn types these with Transport where asyncio.Protocol says BaseTransport
        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            gauge.open += 1
            self._counted = True
            if gauge.open > limits.max_connections:
                over.refused()
                self.app = unavailable  # answers this connection's request, then closes it
            self._arm_header_timer()

        def data_received(self, data: bytes) -> None:
            if self.conn.their_state is h11.IDLE:
                if self._header_timer is None:  # first byte of the next request on a kept-alive connection
                    self._arm_header_timer()
                self._request_bytes += len(data)
            super().data_received(data)
            if self.conn.their_state is not h11.IDLE:
                self._disarm_header_timer()  # headers complete (or the connection is failing)
                self._request_bytes = 0

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm_header_timer()
            self._uncount()
            super().connection_lost(exc)

        def handle_websocket_upgrade(self, event: h11.Request) -> None:
            self._disarm_header_timer()
            self._uncount()
            super().handle_websocket_upgrade(event)

        def _uncount(self) -> None:
            if self._counted:
                self._counted = False
                gauge.open -= 1

        def _arm_header_timer(self) -> None:
            self._disarm_header_timer()
            self._header_timer = self.loop.call_later(limits.header_timeout, self._header_timeout)

        def _disarm_header_timer(self) -> None:
            if self._header_timer is not None:
                self._header_timer.cancel()
                self._header_timer = None

        def _header_timeout(self) -> None:
            self._header_timer = None
            if self.transport.is_closing() or self.conn.their_state is not h11.IDLE:
                return
            if self._request_bytes:  # a partial request: say why; an idle socket is simply closed
                timeouts.refused()
                self.transport.write(_TIMEOUT_RESPONSE)
            self.transport.close()

    return GuardedH11Protocol
