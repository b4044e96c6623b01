"""The composition root: every long-lived part of the service, built once by ``build_services``.

``build_services(settings, store, parts)`` constructs the parts in dependency order: registry and
users, the Feed hub, the WHEP sessions on it and their rights sweep, alert delivery, the health
monitor (which reads the hub and raises alerts), and the one registry change follower that the hub
and the monitor listen to. Building starts nothing: the app's lifespan enters the parts on its
``AsyncExitStack`` in ``Services.parts()`` order and leaves them in reverse. The container is frozen,
so no part is patched onto it after start. An optional part that ``parts`` leaves out is ``None``;
its routers answer 503 through the typed dependencies in ``videohub.api.deps``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from videohub.aio import Part
from videohub.alerts.channels import Directory
from videohub.alerts.service import AlertService
from videohub.audit import AuditLog
from videohub.cluster import Cluster
from videohub.cluster.routing import Router
from videohub.health.hubview import FeedManagerView
from videohub.health.monitor import HealthMonitor
from videohub.hub.follower import RegistryFollower, RegistryListener
from videohub.hub.latest import LatestPictures, PictureSink
from videohub.hub.manager import FeedManager
from videohub.hub.warm import WarmHolds
from videohub.live import LiveHub
from videohub.registry import CameraRegistry, RegistryLimits
from videohub.settings import Settings
from videohub.store import PREFIX, Store
from videohub.urlpolicy import network_policy
from videohub.users import UserStore
from videohub.webrtc.manager import SessionEndHook, SessionManager
from videohub.webrtc.rights import RIGHTS_INTERVAL, RightsSweep, audit_hook
from videohub.webrtc.session import SessionRecord


@dataclass(frozen=True)
class Parts:
    """Which optional parts run: all of them in the service (``Parts.all()``); tests start fewer."""

    hub: bool = False
    """The Feed hub (ingest): ``Services.hub``."""
    whep: bool = False
    """WHEP playback and its rights sweep (needs ``hub``): ``Services.sessions``, ``Services.rights``."""
    health: bool = False
    """Alert delivery and the health monitor (which reads the hub when it runs): ``Services.alerts``,
    ``Services.health``."""
    rights_interval: float = RIGHTS_INTERVAL
    """Seconds between two rights sweeps of the WHEP sessions."""

    @classmethod
    def all(cls) -> Parts:
        return cls(hub=True, whep=True, health=True)


@dataclass(frozen=True)
class Services:
    """The typed container on ``app.state.services``; built by ``build_services``, never mutated."""

    settings: Settings
    store: Store
    registry: CameraRegistry
    users: UserStore
    audit: AuditLog
    live: LiveHub
    """The /ws clients' live events (one Redis pub/sub for the process)."""
    pictures: LatestPictures
    """The latest picture per camera stream in Redis: written by probes, health samples and
    snapshots, read by wall tiles before their live picture arrives."""
    hub: FeedManager | None = None
    warm: WarmHolds | None = None
    """Warm-up holds on the hub's feeds (tours, presets); present with the hub."""
    sessions: SessionManager | None = None
    rights: RightsSweep | None = None
    alerts: AlertService | None = None
    health: HealthMonitor | None = None
    """Present with ``Parts.health``; it runs only with ``health.enabled`` (the API reads it either way)."""
    follower: RegistryFollower | None = None
    """The one registry change follower the hub and the running health monitor subscribe to."""
    cluster: Cluster | None = None
    """Cluster mode (``settings.cluster.enabled``): the workers, the leases and the placement loop;
    None in a single process, which pulls every camera."""
    router: Router | None = None
    """Forwards requests to the worker that serves them (``videohub.cluster.routing``); with ``cluster``."""

    def parts(self) -> list[Part]:
        """The parts to start after the live hub, in dependency order (the lifespan stops them in reverse)."""
        running: list[Part | None] = [
            self.cluster,  # heartbeat and leases first: the hub's gate reads them
            self.router,
            self.hub,
            self.warm,
            self.sessions,
            self.rights,
            self.alerts,
            self.health if self.settings.health.enabled else None,
            self.follower,  # its first resync starts the always_on streams
            # Last, so it stops first: it hands the streams over while the hub and WHEP still run.
            self.cluster.ownership if self.cluster is not None else None,
        ]
        return [part for part in running if part is not None]


def build_registry(settings: Settings, store: Store) -> CameraRegistry:
    redis = store.redis
    return CameraRegistry(
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
    )


def build_services(settings: Settings, store: Store, parts: Parts | None = None) -> Services:
    """Every part of the service, in dependency order; nothing is started yet."""
    parts = parts if parts is not None else Parts.all()
    if settings.cluster.enabled and settings.cluster.role == "api":  # routes playback, ingests nothing
        parts = replace(parts, hub=False, whep=False)
    if parts.whep and not parts.hub:
        raise ValueError("WHEP needs the Feed hub: Parts(whep=True) needs hub=True")
    redis = store.redis
    registry = build_registry(settings, store)
    users = UserStore(redis, settings.auth, settings.line_ids)
    audit = AuditLog(redis, settings.audit.retention_days)
    pictures = LatestPictures(redis)
    hub = warm = sessions = rights = alerts = health = cluster = None
    if settings.cluster.enabled:
        c = settings.cluster
        address = f"http://{c.advertise_host}:{c.internal_port}"
        cluster = Cluster(redis, c, address, lambda: _counters(cluster, sessions), audit)
    if parts.hub:
        hub = FeedManager(
            settings.ingest,
            registry,
            policy=registry.network_policy,
            allow_files=settings.demo.allow_test_sources,
            gate=cluster.ownership if cluster is not None else None,
        )
        if cluster is not None:
            cluster.ownership.attach(hub.streams)
        warm = WarmHolds(hub)
    if parts.whep and hub is not None:
        sessions = SessionManager(
            settings.webrtc,
            hub,
            on_session_end=_ended(audit, cluster),
            on_session_start=cluster.ledger.started if cluster is not None else None,
        )
        rights = RightsSweep(users, registry, sessions, parts.rights_interval)
    if parts.health:
        directory = Directory.from_settings(settings, registry)  # camera and line names for messages
        alerts = AlertService(
            redis,
            settings.alerts,
            prefix=PREFIX,
            directory=directory,
            # Each worker one consumer of every channel's group: an event goes to one of them, once.
            consumer=cluster.me.id if cluster is not None else None,
        )
        view = FeedManagerView(hub) if hub is not None else None
        health = HealthMonitor(
            settings.health,
            registry,
            alerts,
            redis,
            hub=view,
            prefix=PREFIX,
            pictures=PictureSink(pictures, view),
            responsible=cluster.ownership.responsible if cluster is not None else None,
            fence=cluster.ownership.fence if cluster is not None else None,
        )
    listeners: list[RegistryListener] = [hub.streams] if hub is not None else []
    if health is not None and settings.health.enabled:
        listeners.append(health)
    follower = None
    if listeners:
        follower = RegistryFollower(registry, listeners, resync_interval=settings.ingest.resync_interval)
    return Services(
        settings=settings,
        store=store,
        registry=registry,
        users=users,
        audit=audit,
        live=LiveHub(store, settings.ws),
        pictures=pictures,
        hub=hub,
        warm=warm,
        sessions=sessions,
        rights=rights,
        alerts=alerts,
        health=health,
        follower=follower,
        cluster=cluster,
        router=Router(cluster) if cluster is not None else None,
    )


def _ended(audit: AuditLog, cluster: Cluster | None) -> SessionEndHook:
    """Each ended session: audited, and out of this worker's ledger (cluster mode)."""
    audited = audit_hook(audit)
    if cluster is None:
        return audited
    ledger = cluster.ledger

    async def ended(record: SessionRecord) -> None:
        await ledger.ended(record)
        await audited(record)

    return ended


def _counters(cluster: Cluster | None, sessions: SessionManager | None) -> tuple[int, int]:
    """(camera streams pulled, WHEP sessions) of this worker, for its heartbeat."""
    return (len(cluster.leases) if cluster is not None else 0, len(sessions.live()) if sessions else 0)
