"""The camera simulator, checked with real RTSP clients (ffprobe, PyAV) as a camera user would."""

from __future__ import annotations

import json
import socket
import subprocess
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit

import av
import av.error
import cv2
import numpy as np
import numpy.typing as npt
import pytest
from av.video.frame import PictureType

from tests.fixtures.camsim import (
    CAMSIM_DIR,
    SYSTEM_PYTHON,
    CameraSimulator,
    CameraSimulatorError,
    rtsp_describe,
)
from tests.tools.rtsp_clients import OPTS, Reader, start_reader, wait_until

pytestmark = pytest.mark.media

Gray = npt.NDArray[np.uint8]


def grab_frames(url: str, count: int) -> list[npt.NDArray[np.uint8]]:
    """Decode `count` consecutive frames (RGB) from a fresh connection."""
    frames: list[npt.NDArray[np.uint8]] = []
    with av.open(url, options=OPTS, timeout=(10.0, 8.0)) as container:
        for frame in container.decode(video=0):
            frames.append(rgb(frame))
            if len(frames) == count:
                break
    return frames


def rgb(frame: av.VideoFrame) -> npt.NDArray[np.uint8]:
    return np.asarray(frame.to_ndarray(format="rgb24"), dtype=np.uint8)


def gray(picture: npt.NDArray[np.uint8]) -> Gray:
    return np.asarray(cv2.cvtColor(picture, cv2.COLOR_RGB2GRAY), dtype=np.uint8)


def nal_types(annexb: bytes) -> set[int]:
    types: set[int] = set()
    i = annexb.find(b"\x00\x00\x01")
    while i >= 0 and i + 3 < len(annexb):
        types.add(annexb[i + 3] & 0x1F)
        i = annexb.find(b"\x00\x00\x01", i + 3)
    return types


def ffprobe_streams(url: str) -> list[dict[str, object]]:
    # Parameter sets come with the SDP, so a short analysis finds everything.
    probe = ["ffprobe", "-v", "error", "-rtsp_transport", "tcp", "-analyzeduration", "300000"]
    out = subprocess.run(
        [*probe, "-show_streams", "-of", "json", url],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    ).stdout
    streams: list[dict[str, object]] = json.loads(out)["streams"]
    return streams


# ---- what a camera looks like to a client -----------------------------------------------------


def test_ready_line_lists_every_preset_mount_with_its_url(camsim: CameraSimulator) -> None:
    mounts = {m["name"]: m for m in camsim.ready["mounts"]}
    assert {"cb", "main", "high", "h265", "bframes", "nosps", "audio", "basic", "digest"} <= set(mounts)
    assert mounts["cb"]["url"] == camsim.rtsp_url("cb")
    assert mounts["digest"]["url"] == camsim.auth_url("digest", credentials=False)
    assert all(m["height"] == 360 for m in mounts.values())
    assert camsim.auth_password not in json.dumps(camsim.ready)


@pytest.mark.parametrize(
    ("mount", "expected"),
    [
        ("cb", [("h264", "Constrained Baseline")]),
        ("main", [("h264", "Main")]),
        ("high", [("h264", "High")]),
        ("h265", [("hevc", "Main")]),
        ("mjpeg", [("mjpeg", "Baseline")]),
        ("audio", [("h264", "Constrained Baseline"), ("pcm_alaw", None)]),
    ],
)
def test_ffprobe_sees_codec_profile_and_size(
    camsim: CameraSimulator, mount: str, expected: list[tuple[str, str | None]]
) -> None:
    streams = ffprobe_streams(camsim.rtsp_url(mount))
    assert [s["codec_name"] for s in streams] == [codec for codec, _ in expected]
    video = streams[0]
    assert video["profile"] == expected[0][1]
    assert (video["width"], video["height"]) == (640, 360)
    if len(streams) > 1:
        assert streams[1]["sample_rate"] == "8000"


def test_nosps_mount_carries_sps_only_in_the_sdp(camsim: CameraSimulator) -> None:
    def idr_nal_types(mount: str) -> tuple[set[int], list[set[int]]]:
        idrs: list[set[int]] = []
        with av.open(camsim.rtsp_url(mount), options=OPTS, timeout=(10.0, 8.0)) as container:
            extradata = bytes(container.streams.video[0].codec_context.extradata or b"")
            for packet in container.demux(video=0):
                types = nal_types(bytes(packet))
                if 5 in types:
                    idrs.append(types)
                if len(idrs) == 3:
                    break
        # FFmpeg prepends the SDP's parameter sets to the first keyframe it returns: judge the later ones.
        return nal_types(extradata), idrs[1:]

    with ThreadPoolExecutor(2) as pool:
        (sdp_types, idrs), (_, inband_idrs) = pool.map(idr_nal_types, ["nosps", "cb"])
    assert {7, 8} <= sdp_types  # sprop-parameter-sets
    assert idrs and all(7 not in types and 8 not in types for types in idrs)
    assert inband_idrs and all({7, 8} <= types for types in inband_idrs)  # the normal mount, for contrast


def test_bframes_mount_sends_b_frames_out_of_presentation_order(camsim: CameraSimulator) -> None:
    pict_types: list[str] = []
    pts: list[int] = []
    with av.open(camsim.rtsp_url("bframes"), options=OPTS, timeout=(10.0, 8.0)) as container:
        for packet in container.demux(video=0):
            if packet.pts is not None:
                pts.append(packet.pts)
            pict_types += [PictureType(frame.pict_type).name for frame in packet.decode()]
            if len(pict_types) >= 15:
                break
    assert "B" in pict_types
    assert pts != sorted(pts)


def test_query_string_gives_distinct_urls_sharing_one_encoder(
    camsim: CameraSimulator, readers: list[Reader]
) -> None:
    clients = [start_reader(readers, camsim.rtsp_url("main", {"cam": i})) for i in range(32)]
    assert wait_until(lambda: all(r.packets > 0 for r in clients), 20), [r.outcome for r in clients]
    assert camsim.mount_state("main")["medias"] == 1


def test_picture_patterns_are_unambiguous(camsim: CameraSimulator) -> None:
    mounts = ["cb", "black", "frozen", "blur", "covered", "cast"]
    with ThreadPoolExecutor(len(mounts)) as pool:
        grabbed = dict(
            zip(mounts, pool.map(lambda m: grab_frames(camsim.rtsp_url(m), 6), mounts), strict=True)
        )

    def stats(name: str) -> tuple[float, float, float, float]:
        first, last = grabbed[name][0], grabbed[name][-1]
        g = gray(last)
        sharpness = float(cv2.Laplacian(g, cv2.CV_64F).var())
        motion = float(np.abs(last.astype(np.int16) - first.astype(np.int16)).mean())
        return float(g.mean()), float(g.std()), sharpness, motion

    mean, _, sharp, motion = stats("cb")
    assert mean > 60 and sharp > 200 and motion > 5  # the normal moving picture
    mean, std, _, _ = stats("black")
    assert mean < 5 and std < 3
    mean, _, sharp, motion = stats("frozen")
    assert mean > 60 and sharp > 200 and motion < 1
    mean, _, sharp, motion = stats("blur")
    assert mean > 60 and sharp < 50 and motion > 1
    mean, std, _, _ = stats("covered")
    assert 60 < mean < 190 and std < 10
    r, g, b = grabbed["cast"][-1].reshape(-1, 3).mean(axis=0)
    assert g - max(r, b) > 50


# ---- authentication ---------------------------------------------------------------------------


@pytest.mark.parametrize(("mount", "scheme"), [("basic", "Basic"), ("digest", "Digest")])
def test_auth_mount_demands_its_scheme_and_streams_with_credentials(
    camsim: CameraSimulator, mount: str, scheme: str
) -> None:
    reply = rtsp_describe(camsim.auth_url(mount, credentials=False))
    assert reply.status == 401
    assert reply.headers["www-authenticate"].startswith(scheme + " ")
    with pytest.raises(av.error.HTTPUnauthorizedError):
        av.open(camsim.auth_url(mount, password="wrong"), options=OPTS, timeout=(10.0, 8.0))
    assert len(grab_frames(camsim.auth_url(mount), 1)) == 1
    # Auth mounts exist only on the auth port.
    assert rtsp_describe(camsim.rtsp_url(mount)).status == 404


# ---- faults driven through the control API ----------------------------------------------------


def test_stopped_mount_ends_streams_and_answers_404_until_started(
    camsim: CameraSimulator, readers: list[Reader]
) -> None:
    name = camsim.fresh_mount()
    url = camsim.rtsp_url(name)
    watchers = [start_reader(readers, camsim.rtsp_url(name, {"cam": i})) for i in range(2)]
    assert wait_until(lambda: all(r.packets > 0 for r in watchers), 15)

    assert camsim.stop_mount(name)["state"] == "stopped"
    assert all(r.ended.wait(10) for r in watchers)
    assert rtsp_describe(url).status == 404
    with pytest.raises(av.error.HTTPNotFoundError):
        av.open(url, options=OPTS, timeout=(10.0, 8.0))

    assert camsim.start_mount(name)["state"] == "running"
    again = start_reader(readers, url)
    assert wait_until(lambda: again.packets > 0, 15), again.outcome


def test_stall_keeps_the_session_but_stops_packets_until_resume(
    camsim: CameraSimulator, readers: list[Reader]
) -> None:
    name = camsim.fresh_mount()
    reader = start_reader(readers, camsim.rtsp_url(name))
    assert wait_until(lambda: reader.packets > 0, 15), reader.outcome

    assert camsim.stall(name)["stalled"] is True
    # Packets already on the wire may still trickle in: wait for a quiet second (10 fps stream).
    seen = [reader.packets, time.monotonic()]

    def quiet() -> bool:
        if reader.packets != seen[0]:
            seen[:] = [reader.packets, time.monotonic()]
        return time.monotonic() - seen[1] >= 1.0

    assert wait_until(quiet, 10)
    stalled_at = reader.packets
    time.sleep(2.0)
    assert reader.packets == stalled_at
    assert not reader.ended.is_set()  # the connection stays open, like a hung camera

    assert camsim.resume(name)["stalled"] is False
    assert wait_until(lambda: reader.packets > stalled_at + 5, 10)


def test_pattern_switches_live_on_an_open_stream(camsim: CameraSimulator) -> None:
    name = camsim.fresh_mount()
    wanted: list[tuple[str | None, Callable[[float], bool]]] = [
        (None, lambda m: m > 60),
        ("black", lambda m: m < 5),
        ("clock", lambda m: m > 60),
    ]
    with av.open(camsim.rtsp_url(name), options=OPTS, timeout=(10.0, 8.0)) as container:
        frames = container.decode(video=0)
        for pattern, ok in wanted:
            if pattern is not None:
                assert camsim.set_pattern(name, pattern)["pattern"] == pattern
            deadline = time.monotonic() + 10
            while not ok(float(gray(rgb(next(frames))).mean())):
                assert time.monotonic() < deadline, f"picture never became {pattern}"


def test_control_api_rejects_bad_requests(camsim: CameraSimulator) -> None:
    with pytest.raises(CameraSimulatorError, match="400"):
        camsim.add_mount("x1:codec=vp8")
    with pytest.raises(CameraSimulatorError, match="400"):
        camsim.add_mount("x2:profile=baseline,bframes=2")
    with pytest.raises(CameraSimulatorError, match="409"):
        camsim.add_mount("cb:fps=10")
    with pytest.raises(CameraSimulatorError, match="404"):
        camsim.stall("no-such-mount")
    with pytest.raises(CameraSimulatorError, match="400"):
        camsim.set_pattern("cb", "plaid")


def test_bad_mount_spec_on_the_command_line_exits_2() -> None:
    done = subprocess.run(
        [SYSTEM_PYTHON, str(CAMSIM_DIR), "--port", "0", "--mount", "x:codec=vp8"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 2
    assert "codec must be one of" in done.stderr


def test_server_stop_refuses_connections_and_start_serves_again(
    camsim_factory: Callable[..., CameraSimulator], readers: list[Reader]
) -> None:
    sim = camsim_factory(preset="none", mounts=["one:profile=baseline,fps=10,gop=1"])
    with sim:
        url = sim.rtsp_url("one")
        reader = start_reader(readers, url)
        assert wait_until(lambda: reader.packets > 0, 15), reader.outcome

        assert sim.server_stop()["listening"] is False
        assert reader.ended.wait(10)
        port = urlsplit(url).port
        assert port is not None
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", port), timeout=5).close()

        assert sim.server_start()["listening"] is True
        again = start_reader(readers, url)
        assert wait_until(lambda: again.packets > 0, 15), again.outcome
        again.close()
    assert sim.returncode == 0  # SIGTERM is a clean shutdown
