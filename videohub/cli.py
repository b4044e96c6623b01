"""The ``videohub`` command: serve, validate-config, user management."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import getpass
import logging
import os
import resource
import signal
import socket
import sys
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

from videohub.audit import AuditLog
from videohub.errors import VideohubError
from videohub.models import ROLES
from videohub.settings import ConfigError, Settings, load_settings
from videohub.store import OUTAGE, Store
from videohub.users import UserStore
from videohub.valkey import EmbeddedValkey

log = logging.getLogger("videohub.cli")

CLI_ACTOR = "cli"


def _settings(args: argparse.Namespace) -> Settings:
    overrides: dict[str, Any] = {}
    for flag, dotted in (
        ("host", "server__host"),
        ("port", "server__port"),
        ("data_dir", "server__data_dir"),
    ):
        value = getattr(args, flag, None)
        if value is not None:
            overrides[dotted] = value
    return load_settings(args.config, **overrides)


def _server_class() -> Any:
    import uvicorn

    class Server(uvicorn.Server):
        """uvicorn's server, but a SIGTERM/SIGINT shutdown ends the process with exit code 0.

        uvicorn turns the signal into a graceful shutdown (the lifespan stops ingest, sessions and
        the embedded Valkey) and then re-raises it, which ends the process "killed by SIGTERM";
        service managers and the Docker healthcheck read that as a crash.
        """

        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            previous = {sig: signal.signal(sig, self.handle_exit) for sig in (signal.SIGINT, signal.SIGTERM)}
            try:
                yield
            finally:
                for sig, handler in previous.items():
                    signal.signal(sig, handler)

    return Server


def raise_open_files_limit() -> int:
    """Raise the soft RLIMIT_NOFILE to the hard limit and return it.

    Every WHEP session binds UDP sockets (one per ICE host candidate), next to HTTP connections, Redis
    and the ingest threads' RTSP sockets: the usual soft limit of 1024 is reached long before the
    session cap. ``select()``-based code would break above 1024 descriptors; nothing here uses it
    (asyncio uses epoll, FFmpeg uses poll).
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard
    if hard == resource.RLIM_INFINITY:  # the kernel still caps a process at fs.nr_open
        try:
            target = int(Path("/proc/sys/fs/nr_open").read_text().strip())
        except (OSError, ValueError):
            target = 1 << 20
    if soft != resource.RLIM_INFINITY and soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        except (OSError, ValueError) as exc:
            log.warning("cannot raise the open files limit from %d to %d: %s", soft, target, exc)
            return soft
        log.info("open files limit raised from %d to %d", soft, target)
        return target
    return soft


def _cluster_settings(args: argparse.Namespace, settings: Settings) -> Settings:
    """``--role`` and its companions turn cluster mode on for this one process."""
    if args.role is None:
        return settings
    cluster = settings.cluster.model_copy(update={"enabled": True, "role": args.role})
    updates: dict[str, Any] = {}
    for flag, name in (
        ("worker_id", "worker_id"),
        ("advertise_host", "advertise_host"),
        ("internal_port", "internal_port"),
        ("capacity", "capacity"),
    ):
        value = getattr(args, flag, None)
        if value is not None:
            updates[name] = value
    checked = type(cluster).model_validate({**cluster.model_dump(), **updates})  # the flags are checked too
    return settings.model_copy(update={"cluster": checked})


def _internal_socket(settings: Settings) -> socket.socket:
    """This worker's internal HTTP port (other nodes forward to it), bound before the app is built."""
    from videohub.supervisor import listening_socket

    return listening_socket(settings.cluster.advertise_host, settings.cluster.internal_port, 1024)


def _public_socket(settings: Settings, fd: int | None) -> socket.socket:
    if fd is not None:  # handed down by the supervisor (videohub.supervisor): shared by every worker
        return socket.socket(fileno=fd)
    from videohub.supervisor import bind_public

    return bind_public(settings)


def default_workers() -> int:
    """One worker process per core this process may run on (Python's work runs on one core each)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from videohub.app import build_app
    from videohub.http.protocol import guarded_h11_protocol
    from videohub.logs import setup_logging

    _Server = _server_class()
    settings = _settings(args)
    setup_logging(settings.server.log_level, settings.server.log_json)
    raise_open_files_limit()
    workers = args.workers if args.workers is not None else default_workers()
    if args.role is None and workers > 1:
        from videohub.supervisor import serve_workers

        argv: list[str] = []
        for flag, value in (("--config", args.config), ("--data-dir", args.data_dir)):
            if value is not None:
                argv += [flag, str(value)]
        return serve_workers(settings, workers, argv)
    settings = _cluster_settings(args, settings)
    sockets: list[socket.socket] | None = None
    if settings.cluster.enabled:
        public = _public_socket(settings, args.fd)
        internal = _internal_socket(settings)
        port = internal.getsockname()[1]
        settings = settings.model_copy(
            update={"cluster": settings.cluster.model_copy(update={"internal_port": port})}
        )
        sockets = [public, internal]
    app = build_app(settings)
    limits = settings.server.limits
    config = uvicorn.Config(
        app,
        host=settings.server.host,
        port=settings.server.port,
        log_config=None,  # our handlers (with credential redaction) stay in charge
        access_log=True,
        lifespan="on",
        ws="websockets-sansio",
        ws_max_size=settings.ws.max_message_bytes,  # a bigger message closes with 1009 before it is read
        # h11 with a header timeout and a connection cap (videohub/http/protocol.py), whatever is installed
        http=guarded_h11_protocol(limits),
        timeout_keep_alive=limits.keepalive_timeout,
    )
    server = _Server(config)
    server.run(sockets=sockets)
    return 0 if server.started else 1


def cmd_validate(args: argparse.Namespace) -> int:
    try:
        settings = load_settings(args.config)
    except ConfigError as exc:
        print(f"invalid configuration: {exc.source}", file=sys.stderr)
        for path, reason in exc.problems:
            print(f"  {path}: {reason}", file=sys.stderr)
        return 1
    print(f"configuration OK: {len(settings.lines)} lines ({', '.join(settings.line_ids)})")
    return 0


async def _with_users(settings: Settings, action: Callable[[UserStore, AuditLog], Awaitable[int]]) -> int:
    """Run ``action`` on the users store and the audit trail: external Redis, the running embedded
    Valkey, or a temporary one."""
    url = settings.redis_url or EmbeddedValkey.running_url(settings.server.data_dir)
    store = await Store.open(url, settings.server.data_dir, settings.store)
    users = UserStore(store.redis, settings.auth, settings.line_ids)
    try:
        return await action(users, AuditLog(store.redis, settings.audit.retention_days))
    finally:
        users.close()
        await store.close()


def _read_password(args: argparse.Namespace) -> str:
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\n")
    first = getpass.getpass("password: ")
    if getpass.getpass("again: ") != first:
        raise SystemExit("passwords differ")
    return first


def cmd_user(args: argparse.Namespace) -> int:
    settings = _settings(args)

    # Changes made here are audited like the API's, with the actor "cli" (whoever runs it on the host).
    async def run(users: UserStore, audit: AuditLog) -> int:
        if args.user_cmd == "add":
            user = await users.create(args.username, _read_password(args), args.role, args.line)
            await audit.record(CLI_ACTOR, "user.create", user.username, None, user.model_dump(mode="json"))
            print(f"created {user.username} ({user.role}{' ' + user.line if user.line else ''})")
        elif args.user_cmd == "list":
            for user in await users.list():
                print(f"{user.username}\t{user.role}\t{user.line or '-'}")
        elif args.user_cmd == "remove":
            removed = await users.delete(args.username)
            await audit.record(CLI_ACTOR, "user.delete", args.username, removed.model_dump(mode="json"), None)
            print(f"removed {args.username}")
        elif args.user_cmd == "passwd":
            await users.set_password(args.username, _read_password(args))
            await audit.record(CLI_ACTOR, "user.password", args.username, None, None)
            print(f"password changed for {args.username}; their tokens are revoked")
        return 0

    try:
        return asyncio.run(_with_users(settings, run))
    except VideohubError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 1
    except OUTAGE as exc:  # the message names the address, never a password (it is not in it)
        print(f"error: cannot reach Redis ({type(exc).__name__}: {exc}); is it running?", file=sys.stderr)
        return 1


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(
        prog="videohub", description="Camera feed aggregation for a command center."
    )
    sub = top.add_subparsers(dest="cmd", required=True)

    def with_config(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
        p.add_argument("--config", type=Path, default=None, help="YAML configuration file")
        p.add_argument("--data-dir", type=Path, default=None, help="data directory (embedded Valkey)")
        return p

    serve = with_config(sub.add_parser("serve", help="run the service"))
    serve.add_argument("--host", default=None)
    serve.add_argument("--port", type=int, default=None)
    serve.add_argument(
        "--workers",
        type=int,
        default=None,
        help="worker processes behind the one HTTP port, sharing the cameras (default: one per core; "
        "1 runs a single process that pulls every camera)",
    )
    serve.add_argument(
        "--role",
        choices=("all", "api", "worker"),
        default=None,
        help="run this one process as a cluster node sharing VIDEOHUB_REDIS_URL with the others",
    )
    serve.add_argument("--worker-id", default=None, help="this node's id (default <hostname>-<pid>)")
    serve.add_argument("--advertise-host", default=None, help="address other nodes reach this one on")
    serve.add_argument("--internal-port", type=int, default=None, help="internal HTTP port (0: any free)")
    serve.add_argument("--capacity", type=float, default=None, help="placement weight (default 1)")
    serve.add_argument("--fd", type=int, default=None, help=argparse.SUPPRESS)  # from the supervisor
    serve.set_defaults(func=cmd_serve)

    validate = sub.add_parser("validate-config", help="check a configuration file; exit 1 on errors")
    validate.add_argument("--config", type=Path, default=None)
    validate.set_defaults(func=cmd_validate)

    user = sub.add_parser("user", help="manage users")
    user_sub = user.add_subparsers(dest="user_cmd", required=True)
    add = with_config(user_sub.add_parser("add", help="create a user"))
    add.add_argument("username")
    add.add_argument("--role", required=True, choices=ROLES)
    add.add_argument("--line", default=None, help="the line of a line_admin")
    add.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    with_config(user_sub.add_parser("list", help="list users"))
    remove = with_config(user_sub.add_parser("remove", help="delete a user and revoke their tokens"))
    remove.add_argument("username")
    passwd = with_config(user_sub.add_parser("passwd", help="set a user's password"))
    passwd.add_argument("username")
    passwd.add_argument("--password-stdin", action="store_true")
    user.set_defaults(func=cmd_user)
    return top


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        code: int = args.func(args)
    except ConfigError as exc:
        print(str(exc), file=sys.stderr)
        return 2
    return code


if __name__ == "__main__":
    sys.exit(main())
