"""What a WHEP session needs from the Feed hub: a subscription to one camera stream's packets.

``videohub.hub.FeedManager`` is the ``FeedHub``: ``subscribe`` returns a bounded subscription
(``videohub.hub.feed.Subscription``) that starts with the GOP cache (first packet a keyframe with
SPS/PPS); ``get`` raises the hub's FeedClosed when the feed ends (camera deleted or disabled),
``direct`` hands delivery to the ingest thread, ``close`` leaves. ("Source" in this project means
only the ingest thread, ``ingest.source.Source``.)
"""

from __future__ import annotations

from typing import Protocol

from ingest.packet import Packet
from videohub.hub.feed import Sink
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

    def direct(self, sink: Sink) -> bool:
        """From now on, have the ingest thread call ``sink`` with each packet (True), if nothing is
        queued here (else False: read on and try again)."""
        ...


class FeedHub(Protocol):
    async def subscribe(self, camera: Camera, stream: str) -> FeedSubscription:
        """Join the camera stream's feed, starting it if needed; raises when it cannot start."""
        ...
