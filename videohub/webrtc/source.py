"""What a WHEP session needs from the Feed hub: a subscription to one camera stream's packets.

Written against the hub's planned interface (``videohub.hub``): ``subscribe`` returns a bounded
subscription that starts with the GOP cache (first packet a keyframe with SPS/PPS), ``get`` raises
the hub's FeedClosed when the feed ends (camera deleted or disabled), ``close`` leaves.
"""

from __future__ import annotations

from typing import Protocol

from ingest.packet import Packet
from videohub.models import Camera


class FeedSubscription(Protocol):
    async def get(self) -> Packet:
        """The next packet; raises videohub.hub.FeedClosed when the feed has ended."""
        ...

    def close(self) -> None:
        """Leave the feed (idempotent)."""
        ...

    @property
    def drops(self) -> int:
        """Packets skipped because this subscriber fell behind."""
        ...


class FeedSource(Protocol):
    async def subscribe(self, camera: Camera, stream: str) -> FeedSubscription:
        """Join the camera stream's feed, starting it if needed; raises when it cannot start."""
        ...
