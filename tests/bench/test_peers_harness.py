"""The pieces of ``bench/peers.py``: a private Janus, its REST signalling, the watchdog, the headline table.

Janus is Debian's ``janus`` package, installed by the harness when missing (as the benchmark does), run
as a real child process against the real camera simulator; the player is a real aiortc peer. No timing
is asserted: the benchmark measures, these tests check that what it measures is real and that its
failures say why.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bench.harness import headline, page
from bench.harness.janus import (
    Janus,
    JanusError,
    JanusSession,
    Mountpoint,
    ensure_installed,
    machine_address,
    write_config,
)
from bench.harness.viewers import Player, only_address
from tests.fixtures.camsim import CameraSimulator

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def janus_bin() -> Path:
    return ensure_installed()


@pytest.fixture(scope="module")
def address() -> str:
    return machine_address()[1]


@pytest.fixture(scope="module")
def camera() -> Iterator[CameraSimulator]:
    sim = CameraSimulator(preset="none", mounts=["cam:profile=high,width=640,height=360,fps=15,gop=1"])
    try:
        yield sim
    finally:
        sim.close()


def test_the_run_uses_the_machines_own_address_not_loopback(address: str) -> None:
    assert not address.startswith("127.")
    routes = Path("/proc/net/route").read_text()
    interface = machine_address()[0]
    assert any(line.split()[:2] == [interface, "00000000"] for line in routes.splitlines())


def test_janus_config_loads_only_the_streaming_plugin_and_http(
    janus_bin: Path, tmp_path: Path, address: str
) -> None:
    mountpoints = [Mountpoint(1, "rtsp://127.0.0.1:9/a", True), Mountpoint(2, "rtsp://127.0.0.1:9/a")]
    write_config(tmp_path, port=18088, address=address, event_loops=2, mountpoints=mountpoints, name="t")
    assert [p.name for p in (tmp_path / "plugins").iterdir()] == ["libjanus_streaming.so"]
    assert [p.name for p in (tmp_path / "transports").iterdir()] == ["libjanus_http.so"]
    assert not list((tmp_path / "events").iterdir()) and not list((tmp_path / "loggers").iterdir())
    core = (tmp_path / "janus.jcfg").read_text()
    assert f'ice_enforce_list = "{address}"' in core and "event_loops = 2" in core
    streaming = (tmp_path / "janus.plugin.streaming.jcfg").read_text()
    assert streaming.count('type = "rtsp"') == 2
    assert "videobufferkf = true" in streaming and "videobufferkf = false" in streaming
    assert streaming.count('videofmtp = "profile-level-id=42e01f;packetization-mode=1"') == 2
    http = (tmp_path / "janus.transport.http.jcfg").read_text()
    assert "port = 18088" in http and 'ip = "127.0.0.1"' in http and "admin_http = false" in http

    # As shipped: no event_loops line at all (Janus's default, one loop per handle).
    write_config(tmp_path, port=18088, address=address, event_loops=None, mountpoints=[], name="t")
    assert "event_loops" not in (tmp_path / "janus.jcfg").read_text()
    # A value that could break out of a libconfig string is refused, not written.
    with pytest.raises(JanusError, match="quotes or line breaks"):
        write_config(
            tmp_path,
            port=1,
            address=address,
            event_loops=None,
            mountpoints=[Mountpoint(1, 'rtsp://x/"\n}')],
            name="t",
        )


async def test_janus_that_cannot_pull_the_camera_names_the_mountpoint_and_why(
    janus_bin: Path, tmp_path: Path, address: str, camera: CameraSimulator
) -> None:
    janus = Janus(tmp_path, address=address, event_loops=None, name="janus-shipped")
    with pytest.raises(JanusError) as failure:
        await janus.start([Mountpoint(1, camera.rtsp_url("no-such-mount"))])
    message = str(failure.value)
    assert "janus-shipped: mountpoint 1 was not created for" in message
    assert "no-such-mount" in message and "404" in message
    # start() stopped the process it could not use.
    assert janus._proc is None


async def test_a_player_answers_janus_offer_and_decodes_the_camera(
    janus_bin: Path, tmp_path: Path, address: str, camera: CameraSimulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    import aioice.ice

    # The one-address patch a Janus player needs, undone after the test (other tests' peers keep aioice's).
    monkeypatch.setattr(aioice.ice, "get_host_addresses", aioice.ice.get_host_addresses)
    only_address(address)
    janus = Janus(tmp_path, address=address, event_loops=2, name="janus-tuned")
    await janus.start([Mountpoint(1, camera.rtsp_url("cam"), keyframe_buffer=True)])
    try:
        session = await JanusSession.open(janus.base_url)
        player = Player()
        try:
            offer = await session.watch(1)
            # Janus offers (the opposite of WHEP), on the machine's own address only.
            candidates = [x for x in offer.splitlines() if x.startswith("a=candidate:")]
            assert candidates and all(f" {address} " in x for x in candidates)
            # The camera's High stream offered under the label browsers and aiortc accept (videofmtp).
            assert "H264/90000" in offer and "profile-level-id=42e01f" in offer
            await session.start(await player.answer(offer))
            await player.first_frame(within=20)
            assert player.connected_at is not None
            await session.keepalive()
        finally:
            await player.close()
            await session.destroy()
            await session.destroy()  # safe twice
    finally:
        janus.stop()
        janus.stop()
    assert janus._proc is None


_ORPHAN = """
import subprocess, sys, time
sys.path.insert(0, sys.argv[1])
from bench.harness.guard import Guard
guard = Guard()
helper = subprocess.Popen(["sleep", "120"], start_new_session=True)
guard.watch(helper.pid)
print(helper.pid, flush=True)
time.sleep(120)
"""


def test_the_watchdog_stops_helpers_when_the_benchmark_is_killed() -> None:
    bench = subprocess.Popen(
        [sys.executable, "-c", _ORPHAN, str(REPO)], stdout=subprocess.PIPE, text=True, start_new_session=True
    )
    assert bench.stdout is not None
    helper = int(bench.stdout.readline())
    os.kill(helper, 0)  # the helper runs, in its own session
    os.killpg(bench.pid, signal.SIGKILL)  # no finally runs
    bench.wait(timeout=10)
    bench.stdout.close()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            os.kill(helper, 0)
        except ProcessLookupError:
            break
        with open(f"/proc/{helper}/stat") as stat:  # a zombie of an exited helper counts as stopped
            if stat.read().rsplit(")", 1)[1].split()[0] == "Z":
                break
        time.sleep(0.2)
    else:
        os.kill(helper, signal.SIGKILL)
        pytest.fail("the helper outlived the killed benchmark")


# ---- the headline table -------------------------------------------------------------------------


def _line(server: str, level: str, cpu: list[float], per: list[float] | None = None, **extra: Any) -> Any:
    return {
        "bench": "peers",
        "server": server,
        "level": level,
        "viewers": int(level) if level.isdigit() else 0,
        "camera": "camsim H.264 high 1280x720@25",
        "janus": "Debian janus 1.1.2-1",
        "event_loops": 2 if server == "janus-tuned" else None,
        "server_cpu_pct": sum(cpu) / len(cpu),
        "server_cpu_pct_rounds": cpu,
        "per_viewer_cpu_pct": sum(per) / len(per) if per else None,
        "per_viewer_cpu_pct_rounds": per,
        "valid": True,
        "valid_rounds": [True] * len(cpu),
        "machine_busy_pct": 50.0,
        "machine_busy_pct_rounds": [50.0] * len(cpu),
        **extra,
    }


def test_headline_table_judges_the_issues_goals() -> None:
    lines = [
        _line("videohub", "none", [0.3, 0.5]),
        _line("videohub", "0", [2.5, 2.66], cpu_ratio_to_janus_tuned=3.97),
        _line("janus-tuned", "0", [0.65, 0.65]),
        _line("videohub", "1", [4.2, 4.3], [1.6, 1.7], per_viewer_ratio_to_janus_tuned=0.9),
        _line("janus-tuned", "1", [1.7, 1.7], [1.07, 1.07]),
        _line(
            "videohub",
            "100",
            [12.0, 14.0],
            [0.12, 0.13],
            per_viewer_ratio_to_janus_tuned=0.45,
            valid=False,
            valid_rounds=[True, False],
        ),
        _line("janus-tuned", "100", [27.0, 27.0], [0.26, 0.27]),
    ]
    text = headline.body(lines)
    cpu_table = text.split("\n\n")[1]
    rows = {row.split(" | ")[0].lstrip("| "): row for row in cpu_table.splitlines() if row.startswith("| ")}
    assert "This is the headline comparison" in text and "event_loops = 2" in text
    assert rows["no camera"].endswith("| videohub ≤ 0.5 % of a core | yes |")  # mean 0.4
    assert "0.30 / 0.50" in rows["no camera"]  # both rounds beside the mean
    assert rows["0 (feed running)"].endswith("| 3.97× | videohub ≤ 1.5× Janus | **no** |")
    assert rows["1"].endswith("| 0.90× | first viewer ≤ 1.0× Janus | yes |")
    # Within the goal, but a round was invalid: the page says so instead of "yes".
    assert rows["100"].endswith("| invalid |") and "**invalid**" in rows["100"]


def test_the_page_puts_the_headline_first(tmp_path: Path) -> None:
    context = {
        "run_id": "20260101T000000Z",
        "date": "2026-01-01T00:00:00+00:00",
        "machine": {"cores": 2, "cpu": "Test CPU", "mem_gb": 1.0, "kernel": "6"},
        "versions": {"python": "3", "videohub": "0", "aiortc": "1", "av": "2"},
        "commit": {"sha": "abc", "dirty": False},
        "loadavg": {"before": [1.0, 1.0, 1.0], "after": [1.0, 1.0, 1.0]},
        "process": {
            "script": "bench/peers.py",
            "args": ["--quick"],
            "quick": True,
            "wall_s": 1.0,
            "cpu_s": 1.0,
            "avg_cores": 1.0,
            "peak_rss_mb": 1.0,
        },
    }
    lines = [
        _line("videohub", "0", [2.5]),
        _line("janus-tuned", "0", [0.6]),
        _line("videohub", "1", [4.0], [1.5]),
        _line("janus-tuned", "1", [1.6], [1.0]),
        {
            "bench": "peers",
            "mode": "warm_ttff",
            "server": "videohub",
            "label": "videohub (GOP cache)",
            "viewer": "aiortc",
            "runs": 3,
            "camera": {"gop_s": 4.0},
            "p50_ms": 60.0,
            "p95_ms": 90.0,
            "max_ms": 90.0,
        },
        {
            "bench": "peers",
            "mode": "warm_ttff",
            "server": "janus-tuned",
            "label": "Janus, keyframe buffer on",
            "viewer": "aiortc",
            "runs": 3,
            "camera": {"gop_s": 4.0},
            "p50_ms": 80.0,
            "p95_ms": 1070.0,
            "max_ms": 1070.0,
        },
    ]
    (tmp_path / "peers.jsonl").write_text("".join(json.dumps({**x, **context}) + "\n" for x in lines))
    text = page.render(tmp_path, tmp_path / "performance.md")
    results = text.split("## Results", 1)[1]
    assert results.lstrip().startswith(f"### {headline.TITLE}")
    assert "**quick run**" in results.split("###")[1]
    assert "| p95 keeps the lead (below every Janus) | yes |" in text
    assert "![videohub against Janus" in text and (tmp_path / "perf_peers.png").stat().st_size > 0


async def test_viewer_process_answers_an_offer_over_its_pipe(address: str) -> None:
    """The answering mode of the shared viewer process, as bench/peers.py drives it for Janus."""
    from aiortc import RTCConfiguration, RTCPeerConnection

    from bench.harness.viewers import spawn_viewers

    server = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    server.addTransceiver("video", direction="sendonly")
    await server.setLocalDescription(await server.createOffer())
    viewer = await spawn_viewers(1, False, answer=True, address=address)
    try:
        await viewer.send({"id": 0, "offer": server.localDescription.sdp})
        answer: str = (await viewer.recv(timeout=30))["answer"]
    finally:
        await viewer.stop()
        await server.close()
    assert "a=recvonly" in answer
    candidates = [x for x in answer.splitlines() if x.startswith("a=candidate:")]
    assert candidates and all(f" {address} " in x for x in candidates)
