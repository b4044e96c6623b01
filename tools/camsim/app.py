"""Command line, startup and shutdown of the simulator process."""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstVideo", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst  # noqa: E402

from camsim.control import ControlServer  # noqa: E402
from camsim.elements import missing_elements, parse_extra, required_elements  # noqa: E402
from camsim.server import CameraServer, MountError  # noqa: E402
from camsim.spec import PRESETS, SpecError, parse_spec, preset  # noqa: E402


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="camsim", description="RTSP camera simulator (gst-rtsp-server)")
    p.add_argument("--host", default="127.0.0.1", help="address for all three ports (loopback)")
    p.add_argument("--port", type=int, default=8554, help="RTSP port of open mounts (0 = free port)")
    p.add_argument("--auth-port", type=int, default=8555, help="RTSP port of auth mounts (0 = free port)")
    p.add_argument("--control-port", type=int, default=8556, help="HTTP control port (0 = free port)")
    p.add_argument("--preset", choices=sorted(PRESETS), default="none", help="built-in set of mounts")
    p.add_argument("--mount", action="append", default=[], metavar="SPEC", help="name:key=val,... (repeat)")
    p.add_argument("--auth-user", default="admin")
    p.add_argument(
        "--auth-password",
        default=os.environ.get("CAMSIM_AUTH_PASSWORD", "cam-secret-1"),
        help="default $CAMSIM_AUTH_PASSWORD or cam-secret-1 (the env var keeps it out of `ps`)",
    )
    p.add_argument(
        "--require-element",
        action="append",
        default=[],
        metavar="NAME[=PACKAGE]",
        help="also require this GStreamer element at start (a test hook: name a bogus one to see the "
        "start-up check fail)",
    )
    p.add_argument(
        "--exit-with-stdin",
        action="store_true",
        help="quit when stdin reaches EOF (the parent died): no orphaned simulators after a killed test run",
    )
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        specs = preset(args.preset)
        extra = [parse_spec(text) for text in args.mount]
    except SpecError as exc:
        print(f"camsim: {exc}", file=sys.stderr)
        return 2
    by_name = {s.name: s for s in specs}
    by_name.update({s.name: s for s in extra})  # --mount overrides a preset mount of the same name

    Gst.init(None)
    missing = missing_elements(required_elements() + parse_extra(args.require_element))
    if missing:
        # Without this, gst-rtsp-server starts fine and answers 503 to every DESCRIBE.
        for row in missing:
            print(
                f"camsim: GStreamer element {row.element!r} is missing; install the Debian package "
                f"{row.package} (tools/setup installs it)",
                file=sys.stderr,
            )
        return 3
    loop = GLib.MainLoop()
    cameras = CameraServer(args.host, args.port, args.auth_port, args.auth_user, args.auth_password)
    try:
        for spec in by_name.values():
            cameras.add(spec)
        cameras.listen()
        control = ControlServer(args.host, args.control_port, cameras)
    except (MountError, OSError) as exc:
        print(f"camsim: {exc}", file=sys.stderr)
        return 1
    control.start()

    for signum in (signal.SIGTERM, signal.SIGINT):
        GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, signum, _quit, loop)
    if args.exit_with_stdin:
        GLib.io_add_watch(
            GLib.IOChannel.unix_new(sys.stdin.fileno()),
            GLib.PRIORITY_DEFAULT,
            GLib.IOCondition.IN | GLib.IOCondition.HUP | GLib.IOCondition.ERR,
            _on_stdin,
            loop,
        )

    ready = {
        "event": "ready",
        "rtsp": cameras.open.url,
        "auth_rtsp": cameras.auth.url,
        "control": control.url,
        "auth_user": cameras.auth_user,  # the password is never printed
        "mounts": cameras.describe_mounts(),
    }
    sys.stdout.write(json.dumps(ready, separators=(",", ":")) + "\n")
    sys.stdout.flush()
    try:
        loop.run()
    finally:
        control.stop()
        cameras.server_stop()
    return 0


def _quit(loop: GLib.MainLoop) -> bool:
    loop.quit()
    return False  # GLib.SOURCE_REMOVE


def _on_stdin(channel: GLib.IOChannel, _condition: GLib.IOCondition, loop: GLib.MainLoop) -> bool:
    if os.read(channel.unix_get_fd(), 4096):
        return True  # ignore input; only EOF matters
    loop.quit()
    return False
