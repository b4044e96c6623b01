"""The embedded Valkey of a real service: no TCP listener, a private socket, supervised across a kill -9."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import stat
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
import redis.asyncio as aioredis
from redis.exceptions import AuthenticationError, ResponseError

from tests.faults.support import FrameCounter, tcp_listeners, valkey_pid
from tests.fixtures.camsim import CameraSimulator
from tests.fixtures.service import USER_PASSWORD, VideohubService
from videohub.valkey import EmbeddedValkey

VIDEOHUB = [sys.executable, "-m", "videohub.cli"]


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_the_embedded_valkey_has_no_tcp_listener_and_the_cli_reaches_it(
    videohub_service_factory: Callable[..., VideohubService],
) -> None:
    svc = videohub_service_factory()
    pid = valkey_pid(svc)
    assert tcp_listeners(pid) == [], "the embedded valkey-server listens on TCP"
    valkey_dir = svc.data_dir / "valkey"
    sock = valkey_dir / "valkey.sock"
    assert stat.S_ISSOCK(sock.stat().st_mode) and _mode(sock) == 0o600
    assert _mode(valkey_dir) == 0o700
    url_file = valkey_dir / "url"
    assert _mode(url_file) == 0o600 and url_file.read_text().startswith("unix://")

    data = str(svc.data_dir)
    # The CLI reaches the running instance through the same socket: a user it adds can log in.
    added = subprocess.run(
        [*VIDEOHUB, "user", "add", "cli_op", "--role", "operator", "--password-stdin", "--data-dir", data],
        input=USER_PASSWORD + "\n",
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert added.returncode == 0, added.stderr
    assert svc.login("cli_op", USER_PASSWORD)
    listed = subprocess.run(
        [*VIDEOHUB, "user", "list", "--data-dir", data], capture_output=True, text=True, timeout=60
    )
    assert "cli_op\toperator" in listed.stdout, listed.stderr
    assert valkey_pid(svc) == pid  # the CLI started no second server


async def test_a_data_dir_too_long_for_a_unix_socket_gets_a_password(tmp_path: Path) -> None:
    deep = tmp_path / ("d" * 60) / ("e" * 60)
    embedded = EmbeddedValkey(deep)
    url = await asyncio.to_thread(embedded.start)
    try:
        assert len(str(deep / "valkey" / "valkey.sock")) > 107
        assert url.startswith("redis://:"), "TCP without a password"
        host_port = url.rsplit("@", 1)[1]
        bare = aioredis.Redis.from_url(f"redis://{host_port}")
        with pytest.raises((AuthenticationError, ResponseError)):  # NOAUTH
            await bare.set("vh:probe", "1")
        await bare.aclose()
        client = aioredis.Redis.from_url(url)
        assert await client.ping()
        await client.aclose()
        secret = url.split("@", 1)[0].removeprefix("redis://:")
        password_file = deep / "valkey" / "password"
        assert password_file.read_text().strip() == secret and _mode(password_file) == 0o600
        assert _mode(deep / "valkey" / "url") == 0o600
    finally:
        await asyncio.to_thread(embedded.stop)


async def _readyz(http: httpx.AsyncClient) -> int:
    try:
        return (await http.get("/readyz", timeout=2.0)).status_code
    except httpx.HTTPError:
        return 0


@pytest.mark.media
async def test_a_killed_embedded_valkey_is_back_within_5_s_and_playback_never_stops(
    videohub_service_factory: Callable[..., VideohubService], camsim: CameraSimulator
) -> None:
    svc = await asyncio.to_thread(videohub_service_factory)
    tag = uuid.uuid4().hex[:6]
    live_id = f"k{tag}"
    svc.create_camera(live_id, camsim.rtsp_url("main", {"cam": live_id}), mode="always_on")
    others = [f"k{tag}{i}" for i in range(10)]
    for camera_id in others:
        svc.create_camera(camera_id, f"rtsp://127.0.0.1:9/{camera_id}", mode="on_demand")
    users = [f"u{tag}{i}" for i in range(3)]
    tokens = [svc.create_user(name, "operator") for name in users]

    async with httpx.AsyncClient(base_url=svc.base_url, timeout=10) as http:
        player = await FrameCounter.play(http, tokens[0], live_id)
        try:
            await player.wait_frames(10)  # the writes above are > 1 s old now
            before_pid = valkey_pid(svc)
            frames_at_kill = player.frames
            killed_at = time.monotonic()
            os.kill(before_pid, signal.SIGKILL)

            back = False
            while time.monotonic() - killed_at < 5.0:
                if await _readyz(http) == 200 and valkey_pid(svc) != before_pid:
                    back = True
                    break
                await asyncio.sleep(0.1)
            assert back, f"redis not back within 5 s of the kill: {svc.log_text(2000)}"
            frames_at_recovery = player.frames
            await asyncio.sleep(2.0)
            assert player.ended is None, f"the viewer's track ended: {player.ended}"
            assert frames_at_recovery > frames_at_kill and player.frames > frames_at_recovery
        finally:
            await player.close()

        # Every camera and user is still there.
        listed = (await http.get("/api/cameras?limit=500", headers=svc.auth())).json()
        ids = {camera["id"] for camera in listed["items"]}
        assert {live_id, *others} <= ids
        names = {user["username"] for user in (await http.get("/api/users", headers=svc.auth())).json()}
        assert set(users) <= names
        assert (await http.get("/api/auth/me", headers=svc.auth(tokens[1]))).status_code == 200

        metrics = (await http.get("/metrics", headers=svc.auth())).text
        assert re.search(r'videohub_redis_restarts_total\{worker="[a-z0-9-]+"\} 1\.0', metrics), metrics[
            -3000:
        ]


def test_a_service_killed_outright_starts_again_on_its_data_dir(
    videohub_service_factory: Callable[..., VideohubService],
) -> None:
    # kill -9 (or the OOM killer) of the service leaves its valkey-server behind, still holding the
    # socket and the AOF. The next start must take the data dir over, not fail on "address in use"
    # and not run a second server on the same files.
    first = videohub_service_factory()
    first.create_camera("ga-orphan-1", "rtsp://10.1.2.3/live")
    orphan = valkey_pid(first)
    os.kill(first.pid, signal.SIGKILL)
    first._proc.wait(timeout=10)
    assert os.path.exists(f"/proc/{orphan}"), "the valkey-server outlived its service"

    second = VideohubService(first.data_dir)
    try:
        assert second.call("GET", "/api/cameras/ga-orphan-1")["id"] == "ga-orphan-1"
        deadline = time.monotonic() + 10
        while os.path.exists(f"/proc/{orphan}") and time.monotonic() < deadline:
            time.sleep(0.1)
        stat_text = Path(f"/proc/{orphan}/stat").read_text() if os.path.exists(f"/proc/{orphan}") else ""
        assert not stat_text or ") Z " in stat_text, (
            "the orphaned valkey-server still runs beside the new one"
        )
        assert valkey_pid(second) != orphan
    finally:
        second.close()
