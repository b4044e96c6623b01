"""A player that disappears without DELETE (killed process, lost network) is freed within 30 s."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import time
from pathlib import Path

import pytest

from tests.webrtc.conftest import SIZE, Whep
from tests.webrtc.viewer import Viewer

pytestmark = pytest.mark.media

REPO = Path(__file__).resolve().parents[2]


async def _readline(proc: asyncio.subprocess.Process) -> dict[str, object]:
    assert proc.stdout is not None
    line = await asyncio.wait_for(proc.stdout.readline(), 30)
    assert line, "player process ended early"
    data: dict[str, object] = json.loads(line)
    return data


async def test_vanished_player_is_freed_within_30s(whep: Whep) -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.webrtc.player_process",
        cwd=REPO,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )
    stayer = Viewer()
    try:
        offer = str((await _readline(proc))["offer"])
        response = await whep.post_offer("operator", "cam-cb", offer)
        assert response.status_code == 201, response.text
        assert proc.stdin is not None
        proc.stdin.write((json.dumps({"answer": response.text}) + "\n").encode())
        await proc.stdin.drain()
        assert (await _readline(proc))["frame"] == list(SIZE)
        stayer_response = await whep.post_offer("maintenance", "cam-cb", await stayer.offer())
        await stayer.accept(stayer_response.text)
        await stayer.frame(within=30)
        assert len(await whep.live()) == 2

        proc.send_signal(signal.SIGKILL)  # no DELETE, no DTLS close: the player is simply gone
        await proc.wait()
        killed = time.monotonic()
        while time.monotonic() - killed < 30:
            users = [s["user"] for s in await whep.live()]
            if users == ["maintenance"]:
                break
            await stayer.frame()  # the other viewer plays on meanwhile
        assert [s["user"] for s in await whep.live()] == ["maintenance"]
        feed = whep.hub.feed("cam-cb")
        assert feed is not None and feed.subscribers == 1
        audit = await whep.client.get("/api/audit?action=whep.session", headers=whep.auth("admin"))
        assert audit.json()["items"][0]["after"]["end_reason"] == "disconnected"
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        await stayer.close()
