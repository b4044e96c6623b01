"""Normalize one camera stream to what browsers decode: H.264 without B-frames, SPS/PPS in-band.

Sits in the ingest thread between the demuxer and the Feed: ``Normalizer.push`` takes PyAV packets
and returns ``ingest.packet.Packet``s. H.264 without B-frames passes through untouched (no decode;
avcC framing is rewritten to Annex-B). H.265, MJPEG, other decodable codecs and H.264 with B-frames
are transcoded here, once per feed, never per viewer (DESIGN decision 1): PyAV decode → libx264
(ultrafast, zerolatency, no B-frames, bounded GOP) under a ceiling of height, fps and bitrate.
Chromium shows almost nothing of an H.264 stream with B-frames sent as-is over WebRTC, hence the
transcode of those. Audio never gets here (the source only demuxes video into the normalizer).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from fractions import Fraction
from typing import Literal, TypeAlias

import av
import av.error
from av.stream import Stream
from av.video.frame import PictureType
from av.video.reformatter import VideoReformatter

from ingest.errors import IngestError, Reason, UnsupportedCodec
from ingest.h264 import ParameterSetInserter, is_annexb, length_prefixed_to_annexb, parse_extradata
from ingest.packet import Packet

log = logging.getLogger(__name__)

AvPacket: TypeAlias = "av.Packet[Stream]"

Mode = Literal["passthrough", "transcode"]
OUT_TIME_BASE = Fraction(1, 90000)


@dataclass(frozen=True, slots=True)
class Ceiling:
    """Limits of a transcoded feed (passthrough feeds are never touched)."""

    max_height: int = 720
    max_fps: float = 15.0
    max_bitrate_kbps: int = 2000
    gop_seconds: float = 2.0
    """Keyframe interval of the transcoded output: bounds how long a new viewer waits at worst."""


@dataclass(frozen=True, slots=True)
class StreamInfo:
    """What the feed carries, for subscribers (codec/size) and stats (source codec/profile)."""

    mode: Mode
    codec: str
    """Output codec (always h264)."""
    width: int | None
    height: int | None
    source_codec: str
    source_profile: str | None


def decide_mode(codec: str, has_b_frames: bool) -> Mode:
    """Passthrough only for H.264 without B-frames; anything else decodable is transcoded."""
    return "passthrough" if codec == "h264" and not has_b_frames else "transcode"


def _even(value: float) -> int:
    return max(2, int(value) // 2 * 2)


def output_size(width: int, height: int, max_height: int) -> tuple[int, int]:
    """The transcoded picture size: the source's, scaled down to ``max_height`` keeping the aspect."""
    if height <= max_height:
        return _even(width), _even(height)
    return _even(width * max_height / height), _even(max_height)


class Transcoder:
    """Decode → scale → libx264, one instance per transcoded feed session (owned by the Normalizer)."""

    def __init__(
        self, decoder: av.VideoCodecContext, ceiling: Ceiling, source_fps: float | None = None
    ) -> None:
        self._decoder = decoder
        self._ceiling = ceiling
        # The output rate: the camera's own when it is below the ceiling (the GOP is counted in frames).
        self.fps = min(ceiling.max_fps, source_fps) if source_fps else ceiling.max_fps
        self._scaler = VideoReformatter()
        self._encoder: av.VideoCodecContext | None = None
        self._next_time: float | None = None
        self._last_pts = -1
        self._last_seconds: float | None = None
        self.skipped = 0
        """Decoded frames dropped to respect the fps ceiling."""
        self.width: int | None = None
        self.height: int | None = None

    def _open_encoder(self, width: int, height: int) -> av.VideoCodecContext:
        fps = self.fps
        encoder = av.CodecContext.create("libx264", "w")
        assert isinstance(encoder, av.VideoCodecContext)
        encoder.width = width
        encoder.height = height
        encoder.pix_fmt = "yuv420p"
        encoder.time_base = OUT_TIME_BASE
        encoder.framerate = Fraction(fps).limit_denominator(1000)
        encoder.gop_size = max(1, round(fps * self._ceiling.gop_seconds))
        encoder.max_b_frames = 0
        encoder.bit_rate = self._ceiling.max_bitrate_kbps * 1000
        encoder.options = {
            "preset": "ultrafast",
            "tune": "zerolatency",
            "profile": "baseline",
            # A VBV bound so the ceiling is a ceiling, not an average; one second of buffer.
            "maxrate": f"{self._ceiling.max_bitrate_kbps}k",
            "bufsize": f"{self._ceiling.max_bitrate_kbps}k",
            "threads": "1",
            # Keyframes at scene cuts would break the bounded GOP only upward; keep them regular.
            "sc_threshold": "0",
        }
        encoder.open()
        self.width, self.height = width, height
        log.debug("transcoder opened: %dx%d @ %s fps", width, height, fps)
        return encoder

    def push(self, packet: AvPacket | None, received: float) -> list[Packet]:
        """Decode ``packet`` (None flushes) and encode what the ceiling lets through."""
        out: list[Packet] = []
        for frame in self._decoder.decode(packet):
            if not isinstance(frame, av.VideoFrame):
                continue
            seconds = self._seconds(frame)
            if self._next_time is not None and seconds < self._next_time - 0.002:
                self.skipped += 1
                continue
            interval = 1.0 / self._ceiling.max_fps
            # Step the slot forward from its previous value so the rate holds; resync after gaps.
            base = self._next_time if self._next_time is not None else seconds
            self._next_time = base + interval if seconds - base < interval else seconds + interval
            width, height = output_size(frame.width, frame.height, self._ceiling.max_height)
            if self._encoder is None or (width, height) != (self.width, self.height):
                if self._encoder is not None:
                    out.extend(self._drain(received))  # the camera changed resolution
                self._encoder = self._open_encoder(width, height)
            scaled = self._scaler.reformat(frame, width=width, height=height, format="yuv420p")
            pts = round(seconds / OUT_TIME_BASE)
            pts = max(pts, self._last_pts + 1)  # x264 needs strictly increasing pts
            self._last_pts = pts
            scaled.pts = pts
            scaled.time_base = OUT_TIME_BASE
            scaled.pict_type = PictureType.NONE
            for encoded in self._encoder.encode(scaled):
                out.append(self._packet(encoded, received))
        return out

    def _seconds(self, frame: av.VideoFrame) -> float:
        """The frame's presentation time in seconds of the stream's clock.

        RTSP gives the first packets no timestamp until RTCP syncs; such a frame is placed one slot
        after the previous one (never on the wall clock, which would be another time line).
        """
        if frame.pts is not None and frame.time_base is not None:
            seconds = float(frame.pts * frame.time_base)
        elif self._last_seconds is not None:
            seconds = self._last_seconds + 1.0 / self._ceiling.max_fps
        else:
            seconds = 0.0
        self._last_seconds = seconds
        return seconds

    def _packet(self, encoded: AvPacket, received: float) -> Packet:
        return Packet(
            data=bytes(encoded),
            pts=encoded.pts,
            time_base=OUT_TIME_BASE,
            keyframe=encoded.is_keyframe,
            received=received,
        )

    def _drain(self, received: float) -> list[Packet]:
        if self._encoder is None:
            return []
        try:
            return [self._packet(p, received) for p in self._encoder.encode(None)]
        except av.error.FFmpegError:
            return []

    def close(self) -> None:
        self._encoder = None


class ReorderDetector:
    """Tells B-frames from presentation times that go backwards in decode order.

    One backward step is not enough: FFmpeg's RTSP demuxer may shift timestamps once when the
    first RTCP sender report arrives. A stream with B-frames steps back in every mini-GOP, so two
    steps within ``window`` packets are required.
    """

    def __init__(self, window: int = 50) -> None:
        self._window = window
        self._last: int | None = None
        self._since_step: int | None = None

    def push(self, pts: int | None) -> bool:
        """Feed one packet's pts (decode order); True once reordering is established."""
        if self._since_step is not None:
            self._since_step += 1
        if pts is None:
            return False
        last, self._last = self._last, pts
        if last is None or pts >= last:
            return False
        if self._since_step is not None and self._since_step <= self._window:
            return True
        self._since_step = 0
        return False


class Normalizer:
    """Per session: turn the camera's video packets into browser-ready H.264 ``Packet``s.

    Owns the passthrough/transcode decision, the Transcoder (if any) and the SPS/PPS inserter.
    The decision is made from the probed stream and revised at run time: an H.264 stream whose
    presentation times go backwards has B-frames even if probing did not say so, and is switched to
    the transcoder at its next keyframe.
    """

    def __init__(self, stream: av.VideoStream, ceiling: Ceiling | None = None) -> None:
        ctx = stream.codec_context
        self._stream = stream
        self._ceiling = ceiling or Ceiling()
        self.source_codec = ctx.name
        self.source_profile: str | None = ctx.profile
        self._time_base = stream.time_base or Fraction(1, 90000)
        try:
            extradata = parse_extradata(ctx.extradata) if self.source_codec == "h264" else None
        except ValueError as exc:
            raise IngestError(Reason.ERROR, f"unreadable H.264 extradata: {exc}") from None
        self._length_size = extradata.length_size if extradata else None
        self._inserter = ParameterSetInserter(extradata.params if extradata else None)
        self.mode: Mode = decide_mode(self.source_codec, bool(ctx.has_b_frames))
        self._transcoder: Transcoder | None = None
        if self.mode == "transcode":
            self._start_transcoder()
        self._started = False
        self._reorder = ReorderDetector()
        self.drops = 0
        """Packets not handed on: before the first usable keyframe, or unreadable."""
        self.source_width: int | None = ctx.width or None
        self.source_height: int | None = ctx.height or None

    def _start_transcoder(self) -> None:
        ctx = self._stream.codec_context
        try:
            av.codec.Codec(ctx.name, "r")
        except (av.error.FFmpegError, ValueError):
            raise UnsupportedCodec(f"no decoder for codec {ctx.name!r}") from None
        ctx.thread_type = "SLICE"  # frame threading would add a frame of latency per thread
        rate = self._stream.average_rate or self._stream.guessed_rate
        self._transcoder = Transcoder(ctx, self._ceiling, float(rate) if rate else None)
        self.mode = "transcode"
        self._started = False

    @property
    def info(self) -> StreamInfo:
        if self._transcoder is not None:
            width, height = self._transcoder.width, self._transcoder.height
        else:
            width, height = self.source_width, self.source_height
        return StreamInfo(self.mode, "h264", width, height, self.source_codec, self.source_profile)

    def push(self, packet: AvPacket, received: float) -> list[Packet]:
        if self._transcoder is not None:
            return self._transcode(packet, received)
        return self._passthrough(packet, received)

    def _transcode(self, packet: AvPacket, received: float) -> list[Packet]:
        assert self._transcoder is not None
        if not self._started:
            if not packet.is_keyframe:
                self.drops += 1
                return []
            self._started = True
        try:
            out = self._transcoder.push(packet, received)
        except av.error.InvalidDataError:
            self.drops += 1  # a damaged packet (lost RTP); the decoder recovers at the next keyframe
            return []
        result: list[Packet] = []
        for p in out:
            data = self._inserter.process(p.data, p.keyframe)
            result.append(p if data is p.data else _replace_data(p, data))
        return result

    def _passthrough(self, packet: AvPacket, received: float) -> list[Packet]:
        pts = packet.pts
        if self._reorder.push(pts):
            # Presentation order differs from decode order: B-frames that probing missed.
            log.info("H.264 stream reorders frames (B-frames): switching to transcode")
            self._start_transcoder()
            self.drops += 1
            return []
        data = bytes(packet)
        if self._length_size is not None or not is_annexb(data):
            try:
                data = length_prefixed_to_annexb(data, self._length_size or 4)
            except ValueError:
                self.drops += 1
                return []
        keyframe = bool(packet.is_keyframe)
        if not self._started:
            if not keyframe:
                self.drops += 1
                return []
            self._started = True
        data = self._inserter.process(data, keyframe)
        return [Packet(data=data, pts=pts, time_base=self._time_base, keyframe=keyframe, received=received)]

    @property
    def transcoder_skipped(self) -> int:
        return self._transcoder.skipped if self._transcoder is not None else 0

    def close(self) -> None:
        if self._transcoder is not None:
            self._transcoder.close()


def _replace_data(packet: Packet, data: bytes) -> Packet:
    return Packet(
        data=data,
        pts=packet.pts,
        time_base=packet.time_base,
        keyframe=packet.keyframe,
        received=packet.received,
        codec=packet.codec,
    )
