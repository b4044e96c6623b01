"""The typed container of the service's long-lived parts, kept on ``app.state.services``.

Parts other packages add (Feed hub, WHEP sessions, health, alerts) are optional attributes so the
core can run and be tested before they exist; ``videohub.app`` fills them in its lifespan.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from videohub.audit import AuditLog
from videohub.live import LiveHub
from videohub.registry import CameraRegistry, RegistryLimits
from videohub.settings import Settings
from videohub.store import Store
from videohub.urlpolicy import network_policy
from videohub.users import UserStore

if TYPE_CHECKING:
    from videohub.hub.latest import LatestPictures


@dataclass
class Services:
    settings: Settings
    store: Store
    registry: CameraRegistry
    users: UserStore
    audit: AuditLog
    hub: Any = None
    """videohub.hub.manager.FeedManager once started."""
    sessions: Any = None
    """videohub.webrtc session manager once started."""
    health: Any = None
    alerts: Any = None
    live: LiveHub | None = None
    """The /ws clients' live events (one Redis pub/sub for the process), once started."""
    pictures: LatestPictures | None = None
    """The latest picture per camera stream (issue 16: a wall tile shows it at once), once started."""
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def create(cls, settings: Settings, store: Store) -> Services:
        redis = store.redis
        return cls(
            settings=settings,
            store=store,
            registry=CameraRegistry(
                redis,
                settings.line_ids,
                allow_test_sources=settings.demo.allow_test_sources,
                policy=network_policy(settings, redis),
                prefixes={line.id: line.prefix for line in settings.lines},
                limits=RegistryLimits(
                    max_cameras_per_line=settings.ingest.max_cameras_per_line,
                    max_always_on_streams=settings.ingest.max_always_on_streams,
                    always_on_streams=tuple(settings.ingest.always_on_streams),
                ),
            ),
            users=UserStore(redis, settings.auth, settings.line_ids),
            audit=AuditLog(redis, settings.audit.retention_days),
        )
