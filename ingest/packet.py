"""The unit that flows from ingest to the Feed hub and on to viewers.

A ``Packet`` is one encoded H.264 access unit in Annex-B form (start codes), exactly as
read from the camera (passthrough) or as produced by the per-feed transcoder.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction


@dataclass(frozen=True, slots=True)
class Packet:
    data: bytes
    """One access unit, Annex-B. Keyframes always carry SPS/PPS in-band (the normalizer ensures it)."""
    pts: int | None
    """Presentation time in ``time_base`` units (None when the camera gave none)."""
    time_base: Fraction
    keyframe: bool
    received: float
    """``time.monotonic()`` when the packet was read from the camera (for added-latency measurement)."""
    codec: str = "h264"

    @property
    def size(self) -> int:
        return len(self.data)
