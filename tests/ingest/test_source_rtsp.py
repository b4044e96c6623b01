"""Ingest against the real camera simulator (gst-rtsp-server): streaming, faults, reconnects."""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field

import av
import pytest

from ingest import BackoffPolicy, Login, Packet, Reason, Source, SourceOptions, State
from ingest.h264 import NAL_PPS, NAL_SPS, has_parameter_sets, nal_type, split_annexb
from ingest.reconnect import Transition
from tests.fixtures.camsim import CameraSimulator

pytestmark = pytest.mark.media


@dataclass
class Probe:
    """A Source plus everything it handed to the loop."""

    source: Source
    packets: list[Packet] = field(default_factory=list)
    transitions: list[Transition] = field(default_factory=list)

    def backoffs(self) -> list[Transition]:
        return [t for t in self.transitions if t.state is State.BACKING_OFF]


@pytest.fixture
async def start() -> AsyncIterator[Callable[..., Probe]]:
    """Start Sources that are all stopped (threads joined) at teardown."""
    probes: list[Probe] = []
    loop = asyncio.get_running_loop()

    def make(url: str, *, login: Login | None = None, **options: object) -> Probe:
        holder: list[Probe] = []
        source = Source(
            f"test-{len(probes)}",
            url,
            loop=loop,
            on_packet=lambda p: holder[0].packets.append(p),
            on_state=lambda t: holder[0].transitions.append(t),
            login=login,
            options=SourceOptions(**options),  # type: ignore[arg-type]
        )
        probe = Probe(source)
        holder.append(probe)
        probes.append(probe)
        source.start()
        return probe

    yield make
    results = await asyncio.gather(*(p.source.aclose() for p in probes))
    assert all(results), "every ingest thread ended"


async def until(predicate: Callable[[], bool], limit: float, what: str) -> None:
    deadline = time.monotonic() + limit
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {limit} s: {what}")
        await asyncio.sleep(0.05)


def streaming(probe: Probe) -> Callable[[], bool]:
    return lambda: probe.source.state is State.STREAMING and bool(probe.packets)


async def test_a_camera_streams_within_3_s_starting_with_a_keyframe(
    camsim: CameraSimulator, start: Callable[..., Probe]
) -> None:
    probe = start(camsim.rtsp_url("cb", {"t": "streams"}))
    await until(streaming(probe), 3.0, "streaming")
    first = probe.packets[0]
    assert first.keyframe and has_parameter_sets(first.data)
    await until(lambda: len(probe.packets) >= 15, 5.0, "15 packets")
    stats = probe.source.stats.snapshot()
    assert (stats.codec, stats.width, stats.height, stats.mode) == ("h264", 640, 360, "passthrough")
    assert stats.profile == "Constrained Baseline"
    assert stats.packets >= 15 and stats.bytes > 0 and stats.reconnects == 0


async def test_udp_transport_streams(camsim: CameraSimulator, start: Callable[..., Probe]) -> None:
    probe = start(camsim.rtsp_url("main", {"t": "udp"}), transport="udp")
    await until(streaming(probe), 5.0, "streaming over UDP")
    assert probe.packets[0].keyframe


async def test_stopped_mount_backs_off_as_not_found_and_streams_again_when_back(
    camsim: CameraSimulator, start: Callable[..., Probe]
) -> None:
    mount = await asyncio.to_thread(camsim.fresh_mount)
    probe = start(camsim.rtsp_url(mount))
    await until(streaming(probe), 3.0, "streaming")
    await asyncio.to_thread(camsim.stop_mount, mount)
    await until(
        lambda: (
            probe.source.stats.reason in (Reason.NOT_FOUND, Reason.REFUSED)
            and probe.source.state is State.BACKING_OFF
        ),
        3.0,
        "backing_off with not_found",
    )
    count = len(probe.packets)
    await asyncio.to_thread(camsim.start_mount, mount)
    await until(lambda: probe.source.state is State.STREAMING and len(probe.packets) > count, 3.0, "back")
    assert probe.source.stats.reconnects >= 2


async def test_camera_losing_power_backs_off_as_refused_and_recovers(start: Callable[..., Probe]) -> None:
    with CameraSimulator(preset="none", mounts=["cam:profile=baseline,fps=10,gop=1"]) as sim:
        probe = start(sim.rtsp_url("cam"))
        await until(streaming(probe), 3.0, "streaming")
        await asyncio.to_thread(sim.server_stop)
        await until(
            lambda: probe.source.stats.reason is Reason.REFUSED and probe.source.state is State.BACKING_OFF,
            3.0,
            "backing_off with refused",
        )
        count = len(probe.packets)
        await asyncio.to_thread(sim.server_start)
        await until(lambda: len(probe.packets) > count, 3.0, "streaming again")


async def test_stall_is_detected_by_the_watchdog(
    camsim: CameraSimulator, start: Callable[..., Probe]
) -> None:
    mount = await asyncio.to_thread(camsim.fresh_mount)
    probe = start(camsim.rtsp_url(mount), stall_timeout=1.5)
    await until(streaming(probe), 3.0, "streaming")
    await asyncio.to_thread(camsim.stall, mount)
    await until(lambda: any(t.reason is Reason.STALLED for t in probe.backoffs()), 5.0, "stalled")
    await asyncio.to_thread(camsim.resume, mount)
    count = len(probe.packets)
    await until(lambda: len(probe.packets) > count, 5.0, "streaming after resume")


async def test_wrong_credentials_back_off_with_growing_delays(
    camsim: CameraSimulator, start: Callable[..., Probe], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    secret = "wrong-Secret-9"
    probe = start(
        camsim.auth_url("digest", credentials=False),
        login=Login("admin", secret),
        backoff=BackoffPolicy(initial=0.3, maximum=30.0),
    )
    await until(lambda: len(probe.backoffs()) >= 3, 6.0, "three failed attempts")
    failures = probe.backoffs()[:3]
    assert all(t.reason is Reason.AUTH_FAILED for t in failures)
    delays = [t.delay or 0 for t in failures]
    assert delays[0] < delays[1] < delays[2], "no retry storm: each attempt waits longer"
    stats = probe.source.stats.snapshot()
    assert stats.last_error_reason == "auth_failed" and stats.failures >= 3
    assert secret not in (stats.last_error or "")
    assert secret not in caplog.text


async def test_right_credentials_stream_from_an_auth_mount(
    camsim: CameraSimulator, start: Callable[..., Probe]
) -> None:
    probe = start(camsim.auth_url("basic", credentials=False), login=Login("admin", camsim.auth_password))
    await until(streaming(probe), 3.0, "streaming with basic auth")
    assert camsim.auth_password not in probe.source.url


async def test_h265_mount_comes_out_as_h264(camsim: CameraSimulator, start: Callable[..., Probe]) -> None:
    probe = start(camsim.rtsp_url("h265", {"t": "h265"}))
    await until(lambda: len(probe.packets) >= 12, 6.0, "12 transcoded packets")
    assert probe.source.stats.snapshot().codec == "hevc"
    assert probe.source.info is not None and probe.source.info.mode == "transcode"
    assert probe.packets[0].keyframe and has_parameter_sets(probe.packets[0].data)
    decoder = av.CodecContext.create("h264", "r")
    frames = [f for p in probe.packets for f in decoder.decode(av.Packet(p.data))]
    assert len(frames) >= 8 and (frames[0].width, frames[0].height) == (640, 360)


async def test_keyframes_of_the_nosps_mount_get_sps_and_pps(
    camsim: CameraSimulator, start: Callable[..., Probe]
) -> None:
    probe = start(camsim.rtsp_url("nosps", {"t": "nosps"}))
    await until(lambda: sum(p.keyframe for p in probe.packets) >= 2, 6.0, "two keyframes")
    for keyframe in (p for p in probe.packets if p.keyframe):
        types = [nal_type(n) for n in split_annexb(keyframe.data)]
        assert NAL_SPS in types and NAL_PPS in types
        assert types.index(NAL_SPS) < types.index(5), "parameter sets precede the IDR slice"


@pytest.fixture
def silent_server() -> Iterator[str]:
    """A TCP server that accepts and never says a word (a hung camera)."""
    server = socket.create_server(("127.0.0.1", 0))
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def serve() -> None:
        server.settimeout(0.1)
        while not stop.is_set():
            try:
                conn, _ = server.accept()
                accepted.append(conn)
            except TimeoutError:
                continue

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"rtsp://127.0.0.1:{server.getsockname()[1]}/cam"
    finally:
        stop.set()
        thread.join(2)
        for conn in accepted:
            conn.close()
        server.close()


async def test_a_silent_server_times_out_instead_of_hanging(
    silent_server: str, start: Callable[..., Probe]
) -> None:
    probe = start(silent_server, open_timeout=1.0, read_timeout=1.0)
    await until(lambda: bool(probe.backoffs()), 4.0, "the open to time out")
    assert probe.backoffs()[0].reason is Reason.TIMEOUT


async def test_32_cameras_on_one_shared_mount(camsim: CameraSimulator, start: Callable[..., Probe]) -> None:
    # A short backoff cap: a connection the loaded simulator refuses is retried soon (seen once).
    policy = BackoffPolicy(initial=0.5, maximum=2.0)
    probes = [start(camsim.rtsp_url("cb", {"cam": i}), backoff=policy) for i in range(32)]
    await until(lambda: all(p.source.state is State.STREAMING for p in probes), 20.0, "all 32 streaming")
    await until(lambda: all(sum(pk.keyframe for pk in p.packets) >= 2 for p in probes), 10.0, "2 GOPs each")
    assert all(p.packets[0].keyframe for p in probes)


async def test_restart_moves_the_same_thread_to_a_new_url(
    camsim: CameraSimulator, start: Callable[..., Probe]
) -> None:
    probe = start(camsim.rtsp_url("no-such-mount"), backoff=BackoffPolicy(initial=5.0, maximum=30.0))
    await until(lambda: bool(probe.backoffs()), 3.0, "backing off on the wrong URL")
    threads_before = {t.name for t in threading.enumerate() if t.name.startswith("ingest-")}
    probe.source.restart(camsim.rtsp_url("cb", {"t": "restart"}), None)
    # The 5 s backoff is cut short: the new generation connects at once.
    await until(streaming(probe), 3.0, "streaming on the new URL")
    assert probe.source.generation == 1
    assert probe.source.url.endswith("/cb?t=restart")
    assert {t.name for t in threading.enumerate() if t.name.startswith("ingest-")} == threads_before
