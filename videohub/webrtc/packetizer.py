"""H.264 RTP payloads (RFC 6184 STAP-A/FU-A) of each access unit, made once and shared by viewers.

Every viewer of a camera stream receives the very same ``Packet`` objects from the Feed, and the RTP
payloads of an access unit do not depend on the viewer (only the RTP header does). Packetizing in
aiortc's ``RTCRtpSender`` did that work again for every viewer; here it is done once per access unit.
"""

from __future__ import annotations

import threading

from aiortc.codecs.h264 import H264Encoder

from ingest.packet import Packet


def packetize(access_unit: bytes) -> tuple[bytes, ...]:
    """The RTP payloads of one Annex-B access unit, exactly as aiortc's H.264 packetizer makes them
    (NAL units split at start codes; small ones aggregated in STAP-A, large ones split in FU-A).
    """
    return tuple(H264Encoder._packetize(H264Encoder._split_bitstream(access_unit)))


class Packetizer:
    """A bounded cache of RTP payloads per access unit, owned by the SessionManager.

    Keyed by the packet object itself (the Feed hands one object to all its subscribers); the entry
    holds the packet, so its identity cannot be reused while cached. ``max_units`` bounds memory:
    an evicted unit (a late joiner reading an old GOP) is simply packetized again. Thread-safe: the
    loop and every camera's ingest thread (direct senders) use it; packetizing runs outside the lock
    (two threads may both make one unit's payloads, which are equal).
    """

    def __init__(self, max_units: int = 512) -> None:
        self._max = max_units
        self._lock = threading.Lock()
        self._units: dict[int, tuple[Packet, tuple[bytes, ...]]] = {}
        self.made = 0
        """Access units packetized (cache misses)."""
        self.shared = 0
        """Access units served from the cache (work saved)."""

    def payloads(self, packet: Packet) -> tuple[bytes, ...]:
        entry = self._units.get(id(packet))
        if entry is not None and entry[0] is packet:
            self.shared += 1
            return entry[1]
        payloads = packetize(packet.data)
        with self._lock:
            self.made += 1
            units = self._units
            units[id(packet)] = (packet, payloads)
            if len(units) > self._max:
                del units[next(iter(units))]  # the oldest insertion
        return payloads

    def __len__(self) -> int:
        return len(self._units)
