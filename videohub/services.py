"""The typed container of the service's long-lived parts, kept on ``app.state.services``.

Parts other packages add (Feed hub, WHEP sessions, health, alerts) are optional attributes so the
core can run and be tested before they exist; ``videohub.app`` fills them in its lifespan.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from videohub.audit import AuditLog
from videohub.registry import CameraRegistry
from videohub.settings import Settings
from videohub.store import Store
from videohub.users import UserStore


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
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def create(cls, settings: Settings, store: Store) -> Services:
        redis = store.redis
        return cls(
            settings=settings,
            store=store,
            registry=CameraRegistry(
                redis, settings.line_ids, allow_test_sources=settings.demo.allow_test_sources
            ),
            users=UserStore(redis, settings.auth, settings.line_ids),
            audit=AuditLog(redis, settings.audit.retention_days),
        )
