"""Which RTSP sessions are playing, per camera URL: the simulator's view of who ingests what.

Tests of the cluster point many registered cameras at one mount (`/cb?cam=1 … ?cam=30`) and must
count, at the camera, that each one is pulled exactly once. `SessionLog` records a session when its
PLAY has been answered, with the URL's path and query as the client asked for them, and forgets it
at TEARDOWN, when the client's connection closes, or when the server drops it (a stopped mount, a
stopped server). Methods run on the GLib main loop thread only.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import Any

# A relative SETUP/PLAY URL is the Content-Base plus a control part, and gst-rtsp-server puts the
# Content-Base's "/" after the query (`/cb?cam=7/`, FFmpeg then asks `/cb?cam=7/stream=0`): what
# follows the last "/" of the query is the client's control path, not the camera's query.
_CONTROL_TAIL = re.compile(r"/(stream=\d+)?$")


@dataclass(frozen=True)
class PlayedSession:
    path: str
    query: str
    session: str
    client: str


def clean_query(query: str | None) -> str:
    return _CONTROL_TAIL.sub("", query or "")


def _peer(client: Any) -> str:
    """`ip:port` of the client's RTSP connection ("" when it is already gone)."""
    connection = client.get_connection()
    if connection is None:
        return ""
    socket = connection.get_read_socket()
    address = socket.get_remote_address() if socket is not None else None
    if address is None:
        return str(connection.get_ip() or "")
    return f"{address.get_address().to_string()}:{address.get_port()}"


class _Connection:
    """What one client connection asked for: the DESCRIBE's URL, and the sessions it played."""

    def __init__(self) -> None:
        self.path = ""
        self.query = ""
        self.sessions: set[str] = set()


class SessionLog:
    """Playing sessions by id; each client connection's state lives in its signal handlers.

    PyGObject hands a signal handler a fresh wrapper of the same client each time (and `id()`s of
    dead wrappers are reused), so per-connection state is bound to the handlers when the client
    connects, never looked up by the client object.
    """

    def __init__(self) -> None:
        self.playing: dict[str, PlayedSession] = {}

    def watch(self, client: Any) -> None:
        """Follow one new client connection's requests."""
        conn = _Connection()
        client.connect("describe-request", self._on_describe, conn)
        client.connect("play-request", self._on_play, conn)
        client.connect("teardown-request", self._on_teardown, conn)
        client.connect("closed", self._on_closed, conn)

    def _on_describe(self, _client: Any, ctx: Any, conn: _Connection) -> None:
        if ctx.uri is not None:
            conn.path, conn.query = str(ctx.uri.abspath).rstrip("/"), clean_query(ctx.uri.query)

    def _on_play(self, client: Any, ctx: Any, conn: _Connection) -> None:
        # FFmpeg sends SETUP and PLAY to the Content-Base, which gst-rtsp-server (1.22) gives without
        # the query (PLAY rtsp://h:p/cb/ after DESCRIBE rtsp://h:p/cb?cam=7): the camera URL the
        # client asked for is its DESCRIBE's, on the same connection.
        session = ctx.session
        if session is None or ctx.uri is None:
            return
        path, query = str(ctx.uri.abspath).rstrip("/"), clean_query(ctx.uri.query)
        if not query and conn.path == path:
            query = conn.query
        sid = str(session.get_sessionid())
        self.playing[sid] = PlayedSession(path, query, sid, _peer(client))
        conn.sessions.add(sid)

    def _on_teardown(self, _client: Any, ctx: Any, conn: _Connection) -> None:
        if ctx.session is not None:
            sid = str(ctx.session.get_sessionid())
            self.playing.pop(sid, None)
            conn.sessions.discard(sid)

    def _on_closed(self, _client: Any, conn: _Connection) -> None:
        for sid in conn.sessions:
            self.playing.pop(sid, None)
        conn.sessions.clear()

    def describe(self, alive: set[str]) -> list[dict[str, str]]:
        """The playing sessions still in a server's session pool (`alive`), by path, query, id."""
        for sid in [s for s in self.playing if s not in alive]:
            del self.playing[sid]  # removed by the server itself (a kick, a timeout)
        rows = sorted(self.playing.values(), key=lambda s: (s.path, s.query, s.session))
        return [asdict(row) for row in rows]
