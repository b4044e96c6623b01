"""The two RTSP servers of the simulator and the faults it can inject into them."""

from __future__ import annotations

from typing import Any

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, GstRtspServer  # noqa: E402

_IDLE_CHECK_SECONDS = 2

from camsim.auth import PerMountAuth  # noqa: E402
from camsim.mount import Mount  # noqa: E402
from camsim.sessions import SessionLog  # noqa: E402
from camsim.spec import PATTERNS, MountSpec  # noqa: E402

_FILTER = GstRtspServer.RTSPFilterResult


class MountError(Exception):
    """A control request the current state cannot satisfy; `status` is the HTTP status to answer."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class _Listener:
    """One gst RTSPServer plus its listening source, so the port can be closed and reopened."""

    def __init__(self, host: str, port: int, auth: Any = None) -> None:
        self.server = GstRtspServer.RTSPServer()
        self.server.set_address(host)
        self.server.set_service(str(port))
        # gst-rtsp-server listens with a backlog of 5: a burst of probes (128 connecting at once)
        # overflowed it and the dropped SYNs were retried after 1, 3, 7 s, past a probe's timeout.
        self.server.set_backlog(1024)
        if auth is not None:
            self.server.set_auth(auth)
        self.host = host
        self.source_id: int | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"rtsp://{self.host}:{self.port}"

    def listen(self) -> None:
        if self.source_id is not None:
            return
        self.source_id = self.server.attach(None)
        if not self.source_id:
            self.source_id = None
            raise MountError(500, f"cannot listen on {self.host}:{self.server.get_service()}")
        self.port = self.server.get_bound_port()
        # Re-listening after a stop must reuse the same port, not pick a new free one.
        self.server.set_service(str(self.port))

    def close(self) -> None:
        """Stop accepting (the source owns the socket: removing it closes the port) and drop clients."""
        if self.source_id is not None:
            GLib.source_remove(self.source_id)
            self.source_id = None
        self.server.client_filter(lambda _s, _c, *_a: _FILTER.REMOVE, None)

    def session_ids(self) -> set[str]:
        """Ids of every session in this server's pool."""
        found: set[str] = set()

        def collect(_pool: Any, session: Any, *_a: Any) -> Any:
            found.add(session.get_sessionid())
            return _FILTER.KEEP

        self.server.get_session_pool().filter(collect, None)
        return found

    def sessions_of(self, medias: list[Any]) -> set[str]:
        """Ids of the RTSP sessions that have one of `medias` set up."""
        found: set[str] = set()

        def session_filter(_pool: Any, session: Any, *_a: Any) -> Any:
            hit = False

            def media_filter(_session: Any, sessmedia: Any, *_b: Any) -> Any:
                nonlocal hit
                if sessmedia.get_media() in medias:
                    hit = True
                return _FILTER.KEEP

            session.filter(media_filter, None)
            if hit:
                found.add(session.get_sessionid())
            return _FILTER.KEEP

        self.server.get_session_pool().filter(session_filter, None)
        return found

    def kick(self, medias: list[Any]) -> int:
        """Close every client connection watching one of `medias` and remove their sessions.

        Closing the connection gives interleaved (TCP) readers an EOF at once; removing the sessions
        stops UDP streams too, which would otherwise run until the session timeout.
        """
        doomed = self.sessions_of(medias)
        if not doomed:
            return 0
        closed = 0

        def client_filter(_server: Any, client: Any, *_a: Any) -> Any:
            nonlocal closed
            ids: list[str] = []

            def collect(_client: Any, session: Any, *_b: Any) -> Any:
                ids.append(session.get_sessionid())
                return _FILTER.KEEP

            client.session_filter(collect, None)
            if doomed.intersection(ids):
                closed += 1
                return _FILTER.REMOVE
            return _FILTER.KEEP

        self.server.client_filter(client_filter, None)
        pool = self.server.get_session_pool()
        pool.filter(lambda _p, s, *_a: _FILTER.REMOVE if s.get_sessionid() in doomed else _FILTER.KEEP, None)
        return closed


class CameraServer:
    """Owns the open RTSP server, the auth-protected one, every Mount and the log of playing sessions.

    Auth mounts live on their own server: gst-rtsp-server answers 404 instead of 401 for protected
    mounts that share a server with open ones. All methods run on the GLib main loop thread.
    """

    def __init__(self, host: str, port: int, auth_port: int, user: str, password: str) -> None:
        self.mounts: dict[str, Mount] = {}
        self.open = _Listener(host, port)
        self.auth = _Listener(host, auth_port, PerMountAuth(user, password, self._scheme_of))
        self.auth_user = user
        self.sessions = SessionLog()
        for listener in (self.open, self.auth):
            listener.server.connect("client-connected", self._on_client)
        GLib.timeout_add_seconds(_IDLE_CHECK_SECONDS, self._idle_check)

    def _idle_check(self) -> bool:
        """Close the idle valve of every mount nobody has a session with."""
        for mount in self.mounts.values():
            if mount.held is not None and not mount.idle:
                if not self._listener(mount).sessions_of([mount.held]):
                    mount.sleep()
        return True  # GLib.SOURCE_CONTINUE

    def _on_client(self, _server: Any, client: Any) -> None:
        client.connect("describe-request", self._on_describe)
        client.connect("play-request", self._on_play)
        self.sessions.watch(client)

    def _on_describe(self, _client: Any, ctx: Any) -> None:
        media = ctx.media
        for mount in self.mounts.values():
            if media is not None and mount.running and media in mount.medias:
                mount.hold(media, self._listener(mount).server)

    def _on_play(self, _client: Any, ctx: Any) -> None:
        media = ctx.media
        for mount in self.mounts.values():
            if media is not None and mount.held == media:
                mount.wake()

    def _scheme_of(self, name: str) -> str:
        mount = self.mounts.get(name)
        return mount.spec.auth if mount is not None else "digest"

    def _listener(self, mount: Mount) -> _Listener:
        return self.auth if mount.spec.auth != "none" else self.open

    def listen(self) -> None:
        self.open.listen()
        self.auth.listen()

    def url(self, mount: Mount) -> str:
        return self._listener(mount).url + mount.path

    def _get(self, name: str) -> Mount:
        mount = self.mounts.get(name)
        if mount is None:
            raise MountError(404, f"no mount named {name!r}")
        return mount

    def add(self, spec: MountSpec) -> dict[str, Any]:
        if spec.name in self.mounts:
            raise MountError(409, f"mount {spec.name!r} exists")
        mount = Mount(spec)
        self.mounts[spec.name] = mount
        self.start_mount(spec.name)
        return self.describe_mount(mount)

    def start_mount(self, name: str) -> dict[str, Any]:
        mount = self._get(name)
        if not mount.running:
            listener = self._listener(mount)
            listener.server.get_mount_points().add_factory(mount.path, mount.factory)
            mount.running = True
        return self.describe_mount(mount)

    def stop_mount(self, name: str) -> dict[str, Any]:
        """New clients get 404; connected clients of this mount are disconnected."""
        mount = self._get(name)
        listener = self._listener(mount)
        if mount.running:
            listener.server.get_mount_points().remove_factory(mount.path)
            mount.running = False
        kicked = listener.kick(list(mount.medias))
        mount.release()
        return self.describe_mount(mount) | {"disconnected": kicked}

    def stall(self, name: str, stalled: bool) -> dict[str, Any]:
        mount = self._get(name)
        mount.set_stalled(stalled)
        return self.describe_mount(mount)

    def set_pattern(self, name: str, pattern: str) -> dict[str, Any]:
        if pattern not in PATTERNS:
            raise MountError(400, f"pattern must be one of {', '.join(PATTERNS)}")
        mount = self._get(name)
        mount.set_pattern(pattern)
        return self.describe_mount(mount)

    def server_stop(self) -> dict[str, Any]:
        """Like a camera losing power: both ports refuse connections, all clients are dropped."""
        self.open.close()
        self.auth.close()
        return self.describe_server()

    def server_start(self) -> dict[str, Any]:
        self.listen()
        return self.describe_server()

    def describe_mount(self, mount: Mount) -> dict[str, Any]:
        return mount.describe(self.url(mount))

    def describe_sessions(self) -> list[dict[str, str]]:
        """Sessions that have played and not ended, with the path and query their client asked for."""
        return self.sessions.describe(self.open.session_ids() | self.auth.session_ids())

    def describe_mounts(self) -> list[dict[str, Any]]:
        return [self.describe_mount(m) for m in self.mounts.values()]

    def describe_server(self) -> dict[str, Any]:
        return {
            "rtsp": self.open.url,
            "auth_rtsp": self.auth.url,
            "listening": self.open.source_id is not None,
        }
