"""Janus (Debian 12's ``janus`` package) as a private child process, and its HTTP REST API, for benchmarks.

``bench/peers.py`` compares videohub with Janus's streaming plugin on the same camera. This module owns
the Janus side:
- ``ensure_installed()``: ``apt-get install -y --no-install-recommends janus`` when ``/usr/bin/janus``
  is missing (as root, or through ``sudo -n``);
- ``machine_address()``: the IPv4 address of the default route's interface. Janus's ICE (libnice)
  skips loopback interfaces, so Janus and the viewers use this one address for their candidates and
  nothing else (``ice_enforce_list``; the viewers patch aioice the same way);
- ``Janus``: one Janus process with its own configuration folder (a temp dir: ``janus.jcfg``,
  ``janus.plugin.streaming.jcfg``, ``janus.transport.http.jcfg``), whose plugin and transport folders
  hold only the streaming plugin and the HTTP transport, so nothing else is loaded; the REST API on a
  free loopback port; RTSP mountpoints pulling the camera simulator (Janus's RTSP client asks for RTP
  over UDP, which gst-rtsp-server serves), each with Janus's keyframe buffer (``videobufferkf``) on
  or off. ``start()`` returns once every mountpoint receives the camera's packets, or raises
  ``JanusError`` naming why (Janus exited, a mountpoint failed to connect to the camera, no packets);
- ``JanusSession``: what a player does over the REST API: create a session, attach
  ``janus.plugin.streaming``, ``watch`` a mountpoint (Janus answers with a JSEP *offer*: with Janus
  the server offers and the player answers, the opposite of WHEP), ``start`` with the player's
  answer (full ICE: the candidates are in both SDPs, no trickle), keep-alives, ``destroy``.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import itertools
import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

JANUS_BIN = Path("/usr/bin/janus")
STREAMING = "janus.plugin.streaming"
_TRANSACTIONS = itertools.count(1)


class JanusError(RuntimeError):
    """Janus could not be installed, did not start, or could not pull the camera; the message says why."""


# ---- the machine --------------------------------------------------------------------------------


def ensure_installed() -> Path:
    """``/usr/bin/janus``, installed from Debian's ``janus`` package first when it is missing."""
    if JANUS_BIN.exists():
        return JANUS_BIN
    cmd = ["apt-get", "install", "-y", "--no-install-recommends", "janus"]
    if os.geteuid() != 0:
        if shutil.which("sudo") is None:
            raise JanusError("janus is not installed, and installing it needs root or sudo: " + " ".join(cmd))
        cmd = ["sudo", "-n", *cmd]
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    result = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    if result.returncode != 0 and "Unable to locate package" in result.stderr:
        # A fresh machine may have no package lists yet.
        update = ["apt-get", "update"] if cmd[0] == "apt-get" else ["sudo", "-n", "apt-get", "update"]
        subprocess.run(update, capture_output=True, env=env, check=False)
        result = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    if result.returncode != 0 or not JANUS_BIN.exists():
        tail = (result.stderr or result.stdout).strip().splitlines()[-3:]
        raise JanusError(
            f"could not install janus ({' '.join(cmd)}: exit {result.returncode}): {' / '.join(tail)}"
        )
    return JANUS_BIN


def library_dir() -> Path:
    """Where the package put its plugins and transports (``/usr/lib/<triplet>/janus``)."""
    for candidate in sorted(Path("/usr/lib").glob("*/janus")):
        if (candidate / "plugins" / "libjanus_streaming.so").exists():
            return candidate
    raise JanusError("janus is installed but libjanus_streaming.so is missing under /usr/lib/*/janus/plugins")


def default_route_interface() -> str:
    """The interface of the IPv4 default route, from /proc/net/route."""
    for line in Path("/proc/net/route").read_text().splitlines()[1:]:
        fields = line.split()
        if len(fields) > 3 and fields[1] == "00000000" and int(fields[3], 16) & 0x1:  # RTF_UP
            return fields[0]
    raise JanusError("no IPv4 default route: Janus's ICE skips loopback and needs the machine's own address")


def interface_address(interface: str) -> str:
    """The IPv4 address of ``interface`` (SIOCGIFADDR)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        try:
            packed = fcntl.ioctl(sock.fileno(), 0x8915, struct.pack("256s", interface[:15].encode()))
        except OSError as exc:
            raise JanusError(f"interface {interface} has no IPv4 address: {exc}") from exc
    return socket.inet_ntoa(packed[20:24])


def machine_address() -> tuple[str, str]:
    """(interface, IPv4 address) of the default route: the one non-loopback address the run uses."""
    interface = default_route_interface()
    return interface, interface_address(interface)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


# ---- configuration ------------------------------------------------------------------------------


# What the mountpoints offer for the camera's H.264 instead of its own SDP's fmtp (``videofmtp``, the
# streaming plugin's option for an RTSP source whose parameters "conflict with WebRTC viewers"): Debian's
# Chromium receives Constrained Baseline, Main and High 4:4:4 but lists no High (``64``) profile, so it
# rejects the camera's ``profile-level-id=64001f``, and so does aiortc. Decoders play the High stream
# under this label; videohub's answer names the profile of the player's offer in the same way.
BROWSER_FMTP = "profile-level-id=42e01f;packetization-mode=1"


@dataclass(frozen=True)
class Mountpoint:
    """One RTSP mountpoint of the streaming plugin: a camera URL, and Janus's keyframe buffer on or off."""

    id: int
    url: str
    keyframe_buffer: bool = False
    video_fmtp: str | None = BROWSER_FMTP


def _quoted(value: str) -> str:
    """A libconfig string; the values are ours (URLs, paths), refused if they could break the file."""
    if any(c in value for c in '"\\\n\r'):
        raise JanusError(f"refusing a configuration value with quotes or line breaks: {value!r}")
    return f'"{value}"'


def core_config(folder: Path, *, address: str, event_loops: int | None, name: str) -> str:
    """``janus.jcfg``: the shipped defaults except logging, folders, ICE on ``address`` and event loops."""
    loops = f"\tevent_loops = {event_loops}\n" if event_loops else ""
    return (
        "general: {\n"
        f"\tconfigs_folder = {_quoted(str(folder))}\n"
        f"\tplugins_folder = {_quoted(str(folder / 'plugins'))}\n"
        f"\ttransports_folder = {_quoted(str(folder / 'transports'))}\n"
        f"\tevents_folder = {_quoted(str(folder / 'events'))}\n"
        f"\tloggers_folder = {_quoted(str(folder / 'loggers'))}\n"
        "\tlog_to_stdout = true\n"
        "\tdebug_level = 4\n"  # as shipped
        "\tdebug_timestamps = true\n"
        "\tdebug_colors = false\n"
        f"\tserver_name = {_quoted(name)}\n"
        f"\tinterface = {_quoted(address)}\n"
        f"{loops}"
        "}\n"
        "certificates: {\n}\n"
        "media: {\n\tipv6 = false\n}\n"
        "nat: {\n"
        "\tnice_debug = false\n"
        "\tignore_mdns = true\n"
        # Only this address: no loopback (libnice skips it anyway), no other interface, no STUN.
        f"\tice_enforce_list = {_quoted(address)}\n"
        "}\n"
        "plugins: {\n}\ntransports: {\n}\nloggers: {\n}\nevents: {\n\tbroadcast = false\n}\n"
    )


def streaming_config(mountpoints: list[Mountpoint]) -> str:
    """``janus.plugin.streaming.jcfg``: one RTSP mountpoint per camera, video only, no audio."""
    text = "general: {\n\tevents = false\n}\n"
    for mp in mountpoints:
        items = [
            'type = "rtsp"',
            f"id = {mp.id}",
            f"description = {_quoted(f'camera {mp.id}')}",
            "audio = false",
            "video = true",
            f"url = {_quoted(mp.url)}",
            f"videobufferkf = {'true' if mp.keyframe_buffer else 'false'}",
            *([f"videofmtp = {_quoted(mp.video_fmtp)}"] if mp.video_fmtp else []),
            "rtsp_failcheck = true",
            "rtsp_conn_timeout = 5",
            "rtsp_timeout = 10",
        ]
        text += f"camera-{mp.id}: {{\n" + "".join(f"\t{item}\n" for item in items) + "}\n"
    return text


def http_config(port: int) -> str:
    """``janus.transport.http.jcfg``: plain HTTP on 127.0.0.1:``port``, no admin API, no HTTPS."""
    return (
        "general: {\n"
        '\tjson = "plain"\n'
        '\tbase_path = "/janus"\n'
        "\thttp = true\n"
        f"\tport = {port}\n"
        '\tip = "127.0.0.1"\n'
        "\thttps = false\n"
        "}\n"
        "admin: {\n\tadmin_http = false\n\tadmin_https = false\n}\n"
        "cors: {\n}\n"
    )


def write_config(
    folder: Path,
    *,
    port: int,
    address: str,
    event_loops: int | None,
    mountpoints: list[Mountpoint],
    name: str,
) -> None:
    """Janus's whole configuration folder; plugins/ and transports/ link only what the run needs."""
    lib = library_dir()
    for sub, wanted in (("plugins", "libjanus_streaming.so"), ("transports", "libjanus_http.so")):
        path = folder / sub
        path.mkdir(parents=True, exist_ok=True)
        link = path / wanted
        if not link.exists():
            link.symlink_to(lib / sub / wanted)
    for sub in ("events", "loggers"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    (folder / "janus.jcfg").write_text(
        core_config(folder, address=address, event_loops=event_loops, name=name)
    )
    (folder / "janus.plugin.streaming.jcfg").write_text(streaming_config(mountpoints))
    (folder / "janus.transport.http.jcfg").write_text(http_config(port))


# ---- the process --------------------------------------------------------------------------------


class Janus:
    """One private Janus process: its config folder, log, REST API base URL and process id.

    ``start(mountpoints)`` writes the configuration and starts Janus (in its own session, so it can be
    stopped as a group); ``stop()`` sends SIGTERM, then SIGKILL after 10 s, and is safe to call twice.
    ``restart(mountpoints)`` is both, with new mountpoints (the "no camera" level has none).
    """

    def __init__(self, folder: Path, *, address: str, event_loops: int | None, name: str) -> None:
        self.folder = folder
        self.address = address
        self.event_loops = event_loops
        self.name = name
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}/janus"
        self.log_path = folder / "janus.log"
        self.mountpoints: list[Mountpoint] = []
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        if self._proc is None:
            raise JanusError(f"{self.name} is not running")
        return self._proc.pid

    def log_lines(self, *, matching: tuple[str, ...] = (), last: int = 12) -> list[str]:
        try:
            lines = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return []
        if matching:
            lines = [x for x in lines if any(m.lower() in x.lower() for m in matching)]
        return [x.strip() for x in lines[-last:]]

    def spawn(self, mountpoints: list[Mountpoint]) -> int:
        """Write the configuration and start the process; return its pid (= its process group)."""
        ensure_installed()
        self.mountpoints = list(mountpoints)
        write_config(
            self.folder,
            port=self.port,
            address=self.address,
            event_loops=self.event_loops,
            mountpoints=self.mountpoints,
            name=self.name,
        )
        log = self.log_path.open("ab")
        self._proc = subprocess.Popen(
            # --configs-folder too: Janus reads the plugins' configuration from its compiled-in /etc/janus
            # otherwise, whatever janus.jcfg says.
            [
                str(JANUS_BIN),
                "--config",
                str(self.folder / "janus.jcfg"),
                "--configs-folder",
                str(self.folder),
            ],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            cwd=self.folder,
        )
        log.close()
        return self._proc.pid

    async def ready(self, within: float = 30.0) -> None:
        """Wait until the REST API answers and every mountpoint receives packets; else JanusError."""
        assert self._proc is not None
        deadline = time.monotonic() + within
        async with httpx.AsyncClient(timeout=5) as http:
            while True:
                if self._proc.poll() is not None:
                    raise JanusError(
                        f"{self.name} exited with {self._proc.returncode}: "
                        + " / ".join(self.log_lines(matching=("err", "fatal", "fail", "couldn't", "error")))
                    )
                with contextlib.suppress(httpx.HTTPError):
                    response = await http.get(f"{self.base_url}/info")
                    if response.status_code == 200:
                        plugins = response.json().get("plugins", {})
                        if STREAMING not in plugins:
                            raise JanusError(
                                f"{self.name} runs without {STREAMING}: " + " / ".join(self.log_lines())
                            )
                        break
                if time.monotonic() > deadline:
                    raise JanusError(f"{self.name}'s REST API does not answer on {self.base_url}")
                await asyncio.sleep(0.2)
        if not self.mountpoints:
            return
        session = await JanusSession.open(self.base_url)
        try:
            for mp in self.mountpoints:
                await self._receiving(session, mp, deadline)
        finally:
            await session.destroy()

    async def _receiving(self, session: JanusSession, mp: Mountpoint, deadline: float) -> None:
        """Wait until mountpoint ``mp`` exists and its video arrived in the last second."""
        listed: list[int] = []
        while True:
            listed = [int(m["id"]) for m in (await session.request({"request": "list"})).get("list", [])]
            if mp.id in listed:
                info = (await session.request({"request": "info", "id": mp.id})).get("info", {})
                ages = [m.get("age_ms") for m in info.get("media", [])]
                if ages and all(isinstance(a, int) and a < 1000 for a in ages):
                    return
            if time.monotonic() > deadline:
                break
            await asyncio.sleep(0.5)
        why = self.log_lines(matching=("rtsp", "mountpoint", "curl", "couldn't", "error"), last=6)
        state = "exists but receives no packets from" if mp.id in listed else "was not created for"
        raise JanusError(
            f"{self.name}: mountpoint {mp.id} {state} {mp.url}: " + (" / ".join(why) or "no log line")
        )

    async def start(self, mountpoints: list[Mountpoint]) -> int:
        pid = await asyncio.to_thread(self.spawn, mountpoints)
        try:
            await self.ready()
        except BaseException:
            await asyncio.to_thread(self.stop)
            raise
        return pid

    def stop(self) -> None:
        """SIGTERM to the process group, SIGKILL after 10 s. Safe to call twice."""
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)


# ---- the REST API, as a player uses it ----------------------------------------------------------


class JanusSession:
    """One Janus session with one handle attached to the streaming plugin: one player."""

    def __init__(self, http: httpx.AsyncClient, session_id: int, handle_id: int, owns_http: bool) -> None:
        self.http = http
        self.session_id = session_id
        self.handle_id = handle_id
        self._owns_http = owns_http
        self.closed = False

    @classmethod
    async def open(cls, base_url: str, http: httpx.AsyncClient | None = None) -> JanusSession:
        """Create a session and attach the streaming plugin."""
        owns = http is None
        client = http or httpx.AsyncClient(base_url=base_url, timeout=40)
        try:
            session = await _post(client, "", {"janus": "create"})
            sid = int(session["data"]["id"])
            attached = await _post(client, f"/{sid}", {"janus": "attach", "plugin": STREAMING})
        except BaseException:
            if owns:
                await client.aclose()
            raise
        return cls(client, sid, int(attached["data"]["id"]), owns)

    async def request(self, body: dict[str, Any]) -> dict[str, Any]:
        """A synchronous plugin request (list, info): the plugin's answer, or JanusError."""
        reply = await _post(
            self.http, f"/{self.session_id}/{self.handle_id}", {"janus": "message", "body": body}
        )
        data: dict[str, Any] = reply.get("plugindata", {}).get("data", {})
        if "error" in data:
            raise JanusError(f"streaming plugin {body.get('request')}: {data['error']}")
        return data

    async def _message(self, body: dict[str, Any], jsep: dict[str, str] | None = None) -> None:
        message: dict[str, Any] = {"janus": "message", "body": body}
        if jsep is not None:
            message["jsep"] = jsep
        await _post(self.http, f"/{self.session_id}/{self.handle_id}", message)

    async def event(self, within: float = 30.0) -> dict[str, Any]:
        """The next event of this session (long poll), skipping keep-alive answers."""
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            response = await self.http.get(
                f"/{self.session_id}", params={"maxev": 1, "rid": int(time.time() * 1000)}
            )
            response.raise_for_status()
            event: dict[str, Any] = response.json()
            if event.get("janus") != "keepalive":
                return event
        raise JanusError(f"no event from Janus within {within} s")

    async def _plugin_event(self, within: float = 30.0) -> dict[str, Any]:
        while True:
            event = await self.event(within)
            if event.get("janus") == "event" and event.get("sender") == self.handle_id:
                data = event.get("plugindata", {}).get("data", {})
                if "error" in data:
                    raise JanusError(f"streaming plugin: {data['error']}")
                return event

    async def watch(self, mountpoint: int) -> str:
        """``watch`` the mountpoint; Janus's JSEP offer (SDP, its candidates included)."""
        await self._message({"request": "watch", "id": mountpoint})
        while True:
            event = await self._plugin_event()
            jsep = event.get("jsep")
            if jsep and jsep.get("type") == "offer":
                sdp: str = jsep["sdp"]
                return sdp

    async def start(self, answer: str) -> None:
        """``start`` with the player's JSEP answer; returns when the plugin says it is starting."""
        await self._message({"request": "start"}, {"type": "answer", "sdp": answer})
        while True:
            event = await self._plugin_event()
            result = event["plugindata"]["data"].get("result", {})
            if result.get("status") in ("starting", "started"):
                return

    async def keepalive(self) -> None:
        await _post(self.http, f"/{self.session_id}", {"janus": "keepalive"})

    async def destroy(self) -> None:
        """Destroy the session (Janus hangs up the PeerConnection). Safe to call twice."""
        if self.closed:
            return
        self.closed = True
        try:
            with contextlib.suppress(httpx.HTTPError, JanusError):
                await _post(self.http, f"/{self.session_id}", {"janus": "destroy"})
        finally:
            if self._owns_http:
                await self.http.aclose()


async def _post(http: httpx.AsyncClient, path: str, message: dict[str, Any]) -> dict[str, Any]:
    body = {**message, "transaction": f"t{next(_TRANSACTIONS)}"}
    response = await http.post(path, content=json.dumps(body), headers={"Content-Type": "application/json"})
    response.raise_for_status()
    reply: dict[str, Any] = response.json()
    if reply.get("janus") == "error":
        error = reply.get("error", {})
        raise JanusError(f"Janus {message['janus']}: {error.get('code')} {error.get('reason')}")
    return reply
