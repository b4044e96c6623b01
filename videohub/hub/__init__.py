"""The Feed hub: one Feed per camera stream (GOP cache, bounded fan-out) and the manager that runs
their ingest threads as the registry says (``FeedManager``)."""

from videohub.errors import DeliveryFailed, FeedClosed, NoPicture
from videohub.hub.feed import Feed, FeedInfo, Sink, Subscription
from videohub.hub.manager import FeedManager, FeedStats

__all__ = [
    "DeliveryFailed",
    "Feed",
    "FeedClosed",
    "FeedInfo",
    "FeedManager",
    "FeedStats",
    "NoPicture",
    "Sink",
    "Subscription",
]
