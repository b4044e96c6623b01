"""The ``ingest`` settings section: pulling camera streams, reconnecting, transcoding, fan-out buffers.

Defaults follow issue 3: a stall is 3 s without video, backoff grows from 0.5 s to 30 s, on-demand
cameras stop 30 s after their last viewer, transcoded feeds stay within 720p / 15 fps / 2 Mbit/s.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Literal

from pydantic import Field, field_validator, model_validator

from ingest.netpolicy import DEFAULT_NETWORKS
from videohub.settings.base import Section


class BufferSettings(Section):
    """Bounds of each viewer's packet buffer; a viewer that exceeds them skips to the next keyframe."""

    max_packets: int = Field(
        300, ge=8, le=10_000, description="Packets one subscriber may have queued (≈ 20 s at 15 fps)."
    )
    max_bytes: int = Field(
        16 * 1024 * 1024,
        ge=64 * 1024,
        le=512 * 1024 * 1024,
        description="Bytes one subscriber may have queued. Packets are shared, so this bounds what a "
        "stalled viewer can keep alive, not a copy per viewer.",
    )


class TranscodeSettings(Section):
    """The ceiling of feeds transcoded to H.264 (H.265, MJPEG, H.264 with B-frames)."""

    max_height: int = Field(
        720, ge=144, le=2160, description="Pictures taller than this are scaled down (aspect kept)."
    )
    max_fps: float = Field(15.0, ge=1.0, le=60.0, description="Frames per second at most.")
    max_bitrate_kbps: int = Field(
        2000, ge=100, le=50_000, description="Bitrate ceiling (kbit/s), enforced with a 1 s VBV buffer."
    )
    gop_seconds: float = Field(
        2.0,
        ge=0.5,
        le=10.0,
        description="Keyframe interval of the output: the longest a new viewer waits when the GOP cache "
        "cannot serve it.",
    )


StreamName = Literal["main", "sub"]


def _main_only() -> list[StreamName]:
    return ["main"]


def _default_networks() -> list[str]:
    return list(DEFAULT_NETWORKS)


_HOST_PATTERN = re.compile(r"^[a-z0-9_*?.:\[\]-]{1,253}$")


class IngestSettings(Section):
    """Pulling every camera stream: timeouts, reconnect backoff, on-demand lifetime, buffers."""

    open_timeout: float = Field(
        5.0, ge=0.5, le=60.0, description="Seconds for connect, RTSP handshake and probing of one attempt."
    )
    read_timeout: float = Field(
        5.0,
        ge=0.5,
        le=60.0,
        description="Seconds one read may block (also bounded by stall_timeout); a server that accepts "
        "and stays silent cannot hang an ingest thread longer.",
    )
    stall_timeout: float = Field(
        3.0,
        ge=0.5,
        le=60.0,
        description="Seconds without a video packet after which a session is restarted (reason 'stalled').",
    )
    backoff_initial: float = Field(
        0.5, ge=0.1, le=30.0, description="First delay (s) before reconnecting after a failure."
    )
    backoff_max: float = Field(
        30.0, ge=1.0, le=600.0, description="Cap (s) of the exponential, jittered reconnect delay."
    )
    backoff_reset_after: float = Field(
        10.0,
        ge=0.0,
        le=600.0,
        description="A session that streamed this long (s) resets the delay to backoff_initial; shorter "
        "ones keep growing it, so a camera that accepts and drops at once is not hammered.",
    )
    on_demand_idle: float = Field(
        30.0,
        ge=0.0,
        le=3600.0,
        description="Seconds an on_demand camera keeps streaming after its last viewer leaves.",
    )
    always_on_streams: list[StreamName] = Field(
        default_factory=_main_only,
        max_length=2,
        description="Streams of an always_on camera pulled continuously; the others are pulled while "
        "watched, like on_demand cameras.",
    )
    analyzeduration_us: int = Field(
        100_000,
        ge=10_000,
        le=10_000_000,
        description="FFmpeg probing time (µs). Small values open a camera in ~0.25 s instead of ~1.2 s.",
    )
    probesize: int = Field(32_768, ge=2048, le=50_000_000, description="FFmpeg probing size (bytes).")
    subscriber_buffer: BufferSettings = Field(
        default_factory=BufferSettings, description="Each viewer's bounded packet buffer."
    )
    gop_cache_max_bytes: int = Field(
        16 * 1024 * 1024,
        ge=64 * 1024,
        le=512 * 1024 * 1024,
        description="Bytes of the per-feed cache of packets since the last keyframe (instant start). A "
        "longer GOP is not cached: its new viewers wait for the next keyframe.",
    )
    transcode: TranscodeSettings = Field(
        default_factory=TranscodeSettings, description="Ceiling of transcoded feeds."
    )
    snapshot_cache_seconds: float = Field(
        2.0, ge=0.0, le=60.0, description="Seconds a decoded snapshot JPEG is reused."
    )
    snapshot_wait: float = Field(
        5.0,
        ge=0.5,
        le=30.0,
        description="Seconds a snapshot of a camera that is not streaming waits for it to start and "
        "deliver a keyframe before answering 503.",
    )
    resync_interval: float = Field(
        60.0,
        ge=5.0,
        le=3600.0,
        description="Seconds between full comparisons of running feeds with the registry (a safety net "
        "behind the live change feed).",
    )
    allowed_networks: list[str] = Field(
        default_factory=_default_networks,
        max_length=256,
        description="CIDR ranges camera URLs may point at (every address a name resolves to must be in "
        "one). Default: RFC 1918, loopback and link-local. The service's own HTTP port and its Redis are "
        "refused whatever this says.",
    )
    allowed_hosts: list[str] = Field(
        default_factory=list,
        max_length=256,
        description="If not empty, camera URL hosts must also match one of these names or patterns "
        "(fnmatch, e.g. '*.cam.meili.local' or '10.20.*').",
    )
    max_cameras_per_line: int = Field(
        5000, ge=1, le=100_000, description="Cameras one line may register (POST and CSV import)."
    )
    max_always_on_streams: int = Field(
        512,
        ge=0,
        le=20_000,
        description="always_on streams (each an ingest thread, pulled continuously) the registry accepts "
        "for this node; on_demand cameras do not count.",
    )

    @field_validator("allowed_networks")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        for item in value:
            try:
                ipaddress.ip_network(item, strict=True)
            except ValueError as exc:
                raise ValueError(f"{item!r} is not a CIDR range ({exc})") from None
        return value

    @field_validator("allowed_hosts")
    @classmethod
    def _hosts(cls, value: list[str]) -> list[str]:
        for item in value:
            if not _HOST_PATTERN.match(item.lower()):
                raise ValueError(f"{item!r} is not a host name or pattern")
        return [item.lower() for item in value]

    @model_validator(mode="after")
    def _check(self) -> IngestSettings:
        if self.backoff_initial > self.backoff_max:
            raise ValueError("backoff_initial must not exceed backoff_max")
        if len(set(self.always_on_streams)) != len(self.always_on_streams):
            raise ValueError("always_on_streams: duplicate stream")
        return self
