"""Normalizing real encoded streams (generated clips read through a Source): passthrough keeps
H.264 untouched but Annex-B with SPS/PPS on keyframes; H.265, MJPEG and B-frame H.264 come out as
browser-ready H.264 under the ceiling."""

from __future__ import annotations

import asyncio
import itertools
from pathlib import Path

import av
import pytest

from ingest import Ceiling, Packet, Reason, Source, SourceOptions, State
from ingest.h264 import has_parameter_sets, is_annexb
from ingest.normalize import ReorderDetector
from tests.ingest.clips import make_clip


async def collect(url: str, count: int, *, ceiling: Ceiling | None = None) -> tuple[list[Packet], Source]:
    packets: list[Packet] = []
    enough = asyncio.Event()

    def on_packet(packet: Packet) -> None:
        packets.append(packet)
        if len(packets) >= count:
            enough.set()

    options = SourceOptions(realtime_files=False, ceiling=ceiling or Ceiling())
    source = Source("clip", url, loop=asyncio.get_running_loop(), on_packet=on_packet, options=options)
    source.start()
    try:
        await asyncio.wait_for(enough.wait(), 20)
    finally:
        assert await source.aclose()
    return packets[:count], source


def decode_all(packets: list[Packet]) -> list[av.VideoFrame]:
    decoder = av.CodecContext.create("h264", "r")
    assert isinstance(decoder, av.VideoCodecContext)
    frames: list[av.VideoFrame] = []
    for p in packets:
        frames += [f for f in decoder.decode(av.Packet(p.data)) if isinstance(f, av.VideoFrame)]
    frames += [f for f in decoder.decode(None) if isinstance(f, av.VideoFrame)]
    return frames


def assert_browser_ready(packets: list[Packet]) -> None:
    assert packets[0].keyframe, "a feed starts with a keyframe"
    assert all(is_annexb(p.data) and p.codec == "h264" for p in packets)
    keyframes = [p for p in packets if p.keyframe]
    assert keyframes and all(has_parameter_sets(p.data) for p in keyframes)
    pts = [p.pts for p in packets if p.pts is not None]
    assert pts == sorted(pts), "no reordering: browsers must not see B-frames"


async def test_h264_mp4_passes_through_as_annexb_with_parameter_sets(tmp_path: Path) -> None:
    clip = make_clip(tmp_path / "cb.mp4", "libx264", frames=30, gop=10)
    packets, source = await collect(f"file://{clip}", 30)
    assert source.info is not None and source.info.mode == "passthrough"
    assert_browser_ready(packets)
    with av.open(str(clip)) as container:  # untouched payload: same slices as the file
        sizes = [p.size for p in container.demux(video=0) if p.size][:30]
    assert all(p.size >= size for p, size in zip(packets, sizes, strict=True))
    assert len(decode_all(packets)) == 30


@pytest.mark.parametrize(
    ("codec", "ext", "bframes"),
    [("libx265", "mp4", 0), ("mjpeg", "avi", 0), ("libx264", "mp4", 2)],
    ids=["h265", "mjpeg", "h264-bframes"],
)
async def test_other_sources_are_transcoded_to_h264(
    tmp_path: Path, codec: str, ext: str, bframes: int
) -> None:
    clip = make_clip(tmp_path / f"clip.{ext}", codec, frames=30, gop=10, bframes=bframes)
    packets, source = await collect(f"file://{clip}", 20)
    assert source.info is not None and source.info.mode == "transcode"
    assert source.stats.snapshot().output_codec == "h264"
    assert_browser_ready(packets)
    frames = decode_all(packets)
    assert len(frames) >= 15 and (frames[0].width, frames[0].height) == (320, 180)


async def test_transcode_respects_the_ceiling(tmp_path: Path) -> None:
    clip = make_clip(tmp_path / "big.avi", "mjpeg", frames=20, width=640, height=360, fps=20)
    packets, _source = await collect(f"file://{clip}", 10, ceiling=Ceiling(max_height=180, max_fps=10))
    frames = decode_all(packets)
    assert (frames[0].width, frames[0].height) == (320, 180)
    seconds = [float(p.pts * p.time_base) for p in packets if p.pts is not None]
    gaps = [b - a for a, b in itertools.pairwise(seconds)]
    assert min(gaps) >= 0.099, "20 fps source thinned to at most 10 fps"


async def test_a_stream_without_video_is_unsupported(tmp_path: Path) -> None:
    path = tmp_path / "audio.wav"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("pcm_s16le", rate=8000)
        assert isinstance(stream, av.AudioStream)
        frame = av.AudioFrame(format="s16", layout="mono", samples=800)
        for plane in frame.planes:
            plane.update(bytes(plane.buffer_size))
        frame.sample_rate = 8000
        frame.pts = 0
        for packet in stream.encode(frame):
            container.mux(packet)
    states: list[State] = []
    loop = asyncio.get_running_loop()
    source = Source(
        "wav",
        f"file://{path}",
        loop=loop,
        on_packet=lambda p: None,
        on_state=lambda t: states.append(t.state),
    )
    source.start()
    try:
        for _ in range(100):
            if source.stats.last_error_reason is not None:
                break
            await asyncio.sleep(0.05)
    finally:
        assert await source.aclose()
    assert source.stats.last_error_reason is Reason.UNSUPPORTED_CODEC
    assert State.BACKING_OFF in states


def test_reordering_is_detected_from_repeated_backward_steps_only() -> None:
    # I P B B P B B (decode order) as a camera with B-frames sends it.
    bframes = ReorderDetector()
    results = [bframes.push(pts) for pts in (0, 3, 1, 2, 6, 4, 5)]
    assert results.index(True) == 5
    # A single timestamp jump (RTCP sync) on a stream without B-frames is not reordering.
    steady = ReorderDetector()
    pts_list = [None, 9000, 18000, 27000, 5000, *range(14000, 14000 + 9000 * 200, 9000)]
    assert not any(steady.push(pts) for pts in pts_list)
