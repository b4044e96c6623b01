"""``/metrics`` in the Prometheus text format: per camera health and stats, alerts, delivery, process.

Built fresh at each scrape from the live objects (no global metric state to keep in sync, and
several apps in one test process do not collide). Labels carry camera ids and line ids only, never
URLs or credentials. They still map every camera, line and viewer count, so reading them needs a
bearer token: an admin's or maintenance user's, or the scrape token ``server.metrics_token`` that
Prometheus sends (``authorization: {credentials: ...}`` in its scrape config).

Every sample carries ``worker="<id>"``. In a cluster one scrape of any node covers every worker: the
node asks each other live worker for its own (``?local=1`` with the cluster secret, and the scraper's
own bearer token, which that worker checks again) and merges the families
(``videohub.cluster.exposition``); ``videohub_worker_up`` is 0 for a worker that did not answer.
Scraping each worker alone (``?local=1`` needs the secret, so Prometheus cannot ask for it) is not
offered: one target sees the whole cluster.
"""

from __future__ import annotations

import hashlib
import hmac
from collections import Counter
from collections.abc import Iterator
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.gc_collector import GCCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector
from redis.exceptions import RedisError

from videohub.alerts.models import Alert
from videohub.alerts.service import AlertService
from videohub.api.deps import RouterDep, ServicesDep, bearer_token
from videohub.api.workers import worker_id
from videohub.audit import AuditLog
from videohub.cluster.exposition import Collector, Labelled, Merged, worker_up
from videohub.cluster.routing import internal
from videohub.errors import Unauthorized
from videohub.health.monitor import HealthMonitor
from videohub.health.state import STATES
from videohub.policy import check_role
from videohub.services import Services
from videohub.store import OUTAGE
from videohub.users import UserStore

router = APIRouter(tags=["operations"])


class _Snapshot:
    """A collector over data gathered (asynchronously) just before the scrape is rendered."""

    def __init__(
        self,
        monitor: HealthMonitor | None,
        alerts: AlertService | None,
        active: list[Alert] | None,
        redis: tuple[bool, int],
        parked: dict[str, int],
    ) -> None:
        self.monitor = monitor
        self.alerts = alerts
        self.active = active
        self.redis_up, self.redis_restarts = redis
        self.parked = parked

    def collect(self) -> Iterator[Metric]:
        labels = ["camera", "line"]
        state = GaugeMetricFamily(
            "videohub_camera_state", "1 for the camera's current health state", labels=[*labels, "state"]
        )
        fps = GaugeMetricFamily("videohub_camera_fps", "Frames per second received", labels=labels)
        bitrate = GaugeMetricFamily("videohub_camera_bitrate_kbps", "Bitrate received, kbit/s", labels=labels)
        reconnects = CounterMetricFamily("videohub_camera_reconnects", "Ingest reconnections", labels=labels)
        drops = CounterMetricFamily("videohub_ingest_drops", "Packets dropped by the ingest", labels=labels)
        sub_drops = CounterMetricFamily(
            "videohub_subscriber_drops", "Packets dropped for viewers that fell behind", labels=labels
        )
        viewers = GaugeMetricFamily(
            "videohub_camera_viewers", "Subscribers of the camera's feeds", labels=labels
        )
        flapping = GaugeMetricFamily(
            "videohub_camera_flapping", "1 while the camera is flapping", labels=labels
        )
        total_viewers = 0
        if self.monitor is not None:
            for camera_id in sorted(self.monitor.cameras):
                snap = self.monitor.snapshot(camera_id)
                if snap is None:
                    continue
                lv = [camera_id, str(snap["line"])]
                for name in STATES:
                    state.add_metric([*lv, name], 1.0 if snap["state"] == name else 0.0)
                fps.add_metric(lv, float(snap["fps"] or 0.0))
                bitrate.add_metric(lv, float(snap["bitrate_kbps"] or 0.0))
                reconnects.add_metric(lv, float(snap["reconnects"]))
                drops.add_metric(lv, float(snap["drops"]))
                sub_drops.add_metric(lv, float(snap["subscriber_drops"]))
                viewers.add_metric(lv, float(snap["viewers"]))
                flapping.add_metric(lv, 1.0 if snap["flapping"] else 0.0)
                total_viewers += int(snap["viewers"])
        yield from (state, fps, bitrate, reconnects, drops, sub_drops, viewers, flapping)
        all_viewers = GaugeMetricFamily("videohub_viewers", "Subscribers of all feeds of this worker")
        all_viewers.add_metric([], float(total_viewers))
        yield all_viewers
        up = GaugeMetricFamily("videohub_redis_up", "1 while Redis answers")
        up.add_metric([], 1.0 if self.redis_up else 0.0)
        restarts = CounterMetricFamily(
            "videohub_redis_restarts", "Restarts of the embedded Valkey by its watchdog"
        )
        restarts.add_metric([], float(self.redis_restarts))
        yield from (up, restarts)
        if self.active is not None:  # unknown while Redis is unreachable: left out, not reported as 0
            open_alerts = GaugeMetricFamily(
                "videohub_alerts_open", "Unresolved alerts", labels=["line", "kind"]
            )
            for (line, kind), n in sorted(Counter((a.line, a.kind) for a in self.active).items()):
                open_alerts.add_metric([line, kind], float(n))
            yield open_alerts
        if self.monitor is not None:
            probes = CounterMetricFamily("videohub_probes", "On-demand camera probes done")
            probes.add_metric([], float(self.monitor.probes_done))
            overrun = CounterMetricFamily(
                "videohub_probes_overrun", "Probes still running well past their deadline (wedged threads)"
            )
            overrun.add_metric([], float(self.monitor.probes_overrun))
            yield from (probes, overrun)
        if self.alerts is not None:
            delivered = CounterMetricFamily(
                "videohub_webhook_delivered", "Events delivered", labels=["webhook"]
            )
            failures = CounterMetricFamily("videohub_webhook_failures", "Failed attempts", labels=["webhook"])
            retrying = GaugeMetricFamily("videohub_webhook_retrying", "1 while retrying", labels=["webhook"])
            for d in self.alerts.deliveries:
                delivered.add_metric([d.name], float(d.stats.delivered))
                failures.add_metric([d.name], float(d.stats.failures))
                retrying.add_metric([d.name], 1.0 if d.stats.retrying else 0.0)
            parked = GaugeMetricFamily(
                "videohub_webhook_parked", "Events parked in the dead-letter stream", labels=["webhook"]
            )
            for hook, count in sorted(self.parked.items()):
                parked.add_metric([hook], float(count))
            yield from (delivered, failures, retrying, parked)
            live_drops = CounterMetricFamily(
                "videohub_live_event_drops", "Live UI events dropped (slow clients)"
            )
            live_drops.add_metric([], float(self.alerts.live.dropped))
            yield live_drops


class _AuthStats:
    """Login and audit counters of this worker."""

    def __init__(self, users: UserStore, audit: AuditLog, audit_entries: int | None) -> None:
        self.users = users
        self.audit = audit
        self.audit_entries = audit_entries

    def collect(self) -> Iterator[Metric]:
        checked = CounterMetricFamily("videohub_login_verifications", "Passwords checked at login")
        checked.add_metric([], float(self.users.verifications))
        yield checked
        refused = CounterMetricFamily(
            "videohub_login_refused",
            "Logins refused before their password was checked: user (this user from this address must "
            "wait), address (this address has failed too often), busy (too many checks at once)",
            labels=["reason"],
        )
        refused.add_metric(["user"], float(self.users.throttle.refused.get("user", 0)))
        refused.add_metric(["address"], float(self.users.throttle.refused.get("address", 0)))
        refused.add_metric(["busy"], float(self.users.busy_refusals))
        yield refused
        failures = CounterMetricFamily(
            "videohub_audit_write_failures", "Audit entries that could not be written (logged at error level)"
        )
        failures.add_metric([], float(self.audit.failures))
        yield failures
        if self.audit_entries is not None:
            entries = GaugeMetricFamily("videohub_audit_entries", "Entries in the audit trail (kept by age)")
            entries.add_metric([], float(self.audit_entries))
            yield entries


def _digest(value: str) -> bytes:
    return hashlib.sha256(value.encode()).digest()


async def metrics_reader(request: Request, svc: ServicesDep) -> None:
    """401 without a valid bearer token, 403 for roles other than admin and maintenance. The scrape
    token is compared in constant time (digests, so not even its length shows)."""
    token = bearer_token(request)
    if token is None:
        raise Unauthorized("missing bearer token")
    scrape = svc.settings.server.metrics_token
    if scrape is not None and hmac.compare_digest(_digest(token), _digest(scrape.get_secret_value())):
        return
    user = await svc.users.user_for_token(token)
    if user is None:
        raise Unauthorized("invalid or expired token")
    check_role(user, "admin", "maintenance")


@router.get("/metrics", include_in_schema=False, dependencies=[Depends(metrics_reader)])
async def metrics(
    request: Request, svc: ServicesDep, cluster: RouterDep, local: Annotated[bool, Query()] = False
) -> Response:
    here = await _local_metrics(svc)
    if cluster is None or (local and internal(request, cluster.cluster)):
        return _render(here)
    gathered = await cluster.gather(request, "/metrics")
    merged = Merged(here.collect())
    for answer in gathered.answers.values():
        merged.add_text(answer.text)
    merged.add(worker_up([worker_id(svc), *gathered.answers], gathered.missing))
    return _render(merged)


def _render(collector: Collector) -> Response:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)


async def _local_metrics(svc: Services) -> Merged:
    """This worker's metrics, each sample labelled with its id."""
    monitor, alerts = svc.health, svc.alerts
    active: list[Alert] | None = []
    parked: dict[str, int] = {}
    up = True
    if alerts is not None:
        try:
            active = await alerts.store.active()
            parked = await alerts.dead.counts(d.name for d in alerts.deliveries)
        except OUTAGE:  # a scrape during an outage still shows the process, the feeds and the store
            active, up = None, False
    else:
        up = await svc.store.ping()
    try:
        audit_entries: int | None = await svc.audit.length()
    except (RedisError, OSError):
        audit_entries = None
    process = CollectorRegistry(auto_describe=False)  # the process's own collectors register in it
    ProcessCollector(registry=process)
    PlatformCollector(registry=process)
    GCCollector(registry=process)
    collectors: list[Collector] = [
        process,
        _Snapshot(monitor, alerts, active, (up, svc.store.restarts), parked),
        _AuthStats(svc.users, svc.audit, audit_entries),
    ]
    return Merged(Labelled(worker_id(svc), collectors).collect())
