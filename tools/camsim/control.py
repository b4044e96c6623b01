"""HTTP/JSON control interface of the simulator (stdlib server in its own thread).

GStreamer and gst-rtsp-server objects belong to the GLib main loop, so every request is handed to
that loop with `GLib.idle_add` and the handler thread waits for the result.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from gi.repository import GLib

from camsim.server import CameraServer, MountError
from camsim.spec import SpecError, parse_spec

_LOOP_TIMEOUT = 10.0


def call_in_loop(fn: Callable[[], Any], timeout: float = _LOOP_TIMEOUT) -> Any:
    """Run `fn` on the GLib main loop and return its result (or re-raise its exception)."""
    done = threading.Event()
    box: dict[str, Any] = {}

    def run() -> bool:
        try:
            box["result"] = fn()
        except Exception as exc:  # handed back to the HTTP thread
            box["error"] = exc
        done.set()
        return False

    GLib.idle_add(run)
    if not done.wait(timeout):
        raise MountError(503, "main loop did not answer")
    if "error" in box:
        raise box["error"]
    return box.get("result")


class ControlServer(ThreadingHTTPServer):
    """The control port. Owns nothing but a reference to the CameraServer it drives."""

    daemon_threads = True

    def __init__(self, host: str, port: int, cameras: CameraServer) -> None:
        super().__init__((host, port), _Handler)
        self.cameras = cameras
        self.thread = threading.Thread(target=self.serve_forever, name="camsim-control", daemon=True)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.shutdown()
        self.server_close()


class _Handler(BaseHTTPRequestHandler):
    server: ControlServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        # stdout carries the ready line for the parent process; keep requests out of it.
        return

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def _body(self) -> dict[str, Any]:
        length = int(self.headers.get("Content-Length") or 0)
        if not length:
            return {}
        data = json.loads(self.rfile.read(length))
        if not isinstance(data, dict):
            raise MountError(400, "body must be a JSON object")
        return data

    def _dispatch(self, method: str) -> None:
        try:
            status, result = 200, self._route(method, self.path.split("?", 1)[0].strip("/").split("/"))
        except MountError as exc:
            status, result = exc.status, {"error": str(exc)}
        except (ValueError, KeyError) as exc:
            status, result = 400, {"error": f"bad request: {exc}"}
        payload = json.dumps(result).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def _route(self, method: str, parts: list[str]) -> Any:
        cams = self.server.cameras
        if method == "GET" and parts == ["mounts"]:
            return call_in_loop(cams.describe_mounts)
        if method == "GET" and parts == ["sessions"]:
            return call_in_loop(cams.describe_sessions)
        if method == "GET" and parts == ["server"]:
            return call_in_loop(cams.describe_server)
        if method != "POST":
            raise MountError(404 if method == "GET" else 405, "no such endpoint")
        body = self._body()
        if parts == ["mounts"]:
            try:
                spec = parse_spec(str(body.get("spec", "")))
            except SpecError as exc:
                raise MountError(400, str(exc)) from exc
            return call_in_loop(lambda: cams.add(spec))
        if parts == ["server", "stop"]:
            return call_in_loop(cams.server_stop)
        if parts == ["server", "start"]:
            return call_in_loop(cams.server_start)
        if len(parts) == 3 and parts[0] == "mounts":
            name, action = parts[1], parts[2]
            actions: dict[str, Callable[[], Any]] = {
                "stop": lambda: cams.stop_mount(name),
                "start": lambda: cams.start_mount(name),
                "stall": lambda: cams.stall(name, True),
                "resume": lambda: cams.stall(name, False),
                "pattern": lambda: cams.set_pattern(name, str(body.get("pattern", ""))),
            }
            if action in actions:
                return call_in_loop(actions[action])
        raise MountError(404, "no such endpoint")
