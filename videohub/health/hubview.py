"""The view of the Feed hub that the health monitor reads (``HubView`` over the ``FeedManager``)."""

from __future__ import annotations

from ingest.packet import Packet
from ingest.stats import StatsSnapshot, StreamState
from videohub.hub.manager import FeedManager


class FeedManagerView:
    """Adapts ``videohub.hub.manager.FeedManager`` to the monitor's ``HubView``.

    Health follows the stream the hub pulls continuously (``ingest.always_on_streams``, main by
    default); for an on_demand camera it follows whichever stream someone is watching, and says
    "not pulled" (None) otherwise so the probe schedule covers it.
    """

    def __init__(self, manager: FeedManager) -> None:
        self.manager = manager

    def _pick(self, camera_id: str) -> tuple[str, StatsSnapshot | None] | None:
        streams = self.manager.stats(camera_id)
        if not streams:
            return None
        for name, fs in streams.items():
            if fs.always_on:
                return name, fs.ingest
        for name, fs in streams.items():
            if fs.state is not StreamState.IDLE:
                return name, fs.ingest
        return None

    def sampled_stream(self, camera_id: str) -> str | None:
        """The stream whose keyframes ``latest_keyframe`` gives (None when none is pulled)."""
        picked = self._pick(camera_id)
        return None if picked is None else picked[0]

    def stream_stats(self, camera_id: str) -> StatsSnapshot | None:
        picked = self._pick(camera_id)
        return None if picked is None else picked[1]

    def latest_keyframe(self, camera_id: str) -> Packet | None:
        picked = self._pick(camera_id)
        if picked is None:
            return None
        feed = self.manager.feed(camera_id, picked[0])
        return feed.last_keyframe if feed is not None else None

    def viewers(self, camera_id: str) -> int:
        return sum(fs.subscribers for fs in self.manager.stats(camera_id).values())

    def subscriber_drops(self, camera_id: str) -> int:
        return sum(fs.subscriber_drops for fs in self.manager.stats(camera_id).values())
