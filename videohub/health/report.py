"""What the health API returns: per camera, per line, and one camera's detail.

Reads the monitor of this worker for live numbers (fps, bitrate, checks) and the Redis state hash
for cameras another worker watches, plus the availability history.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, Field

from videohub.health.availability import WINDOWS, combine
from videohub.health.monitor import HealthMonitor
from videohub.health.state import STATES
from videohub.models import Camera


class CameraHealth(BaseModel):
    camera: str
    name: str
    line: str
    mode: str
    state: str = Field(description="unknown, online, degraded or offline.")
    reasons: list[str]
    since: float | None = Field(None, description="When the state began (epoch seconds).")
    flapping: bool = False
    fps: float | None = None
    bitrate_kbps: float | None = None
    last_packet_age: float | None = Field(None, description="Seconds since the last packet.")
    last_error: str | None = None
    reconnects: int = 0
    viewers: int = 0
    uptime_24h_pct: float | None = Field(None, description="Availability (not offline) over 24 h, %.")


class WindowAvailability(BaseModel):
    availability_pct: float | None
    healthy_pct: float | None
    mttr_seconds: float | None
    incidents: int


class LineHealth(BaseModel):
    line: str
    name_zh: str
    name_en: str
    cameras: int
    states: dict[str, int] = Field(description="Cameras per state.")
    open_alerts: int
    availability: dict[str, WindowAvailability] = Field(description="Per window: 1h, 24h, 7d.")


async def _states(monitor: HealthMonitor, cameras: Sequence[Camera]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for camera in cameras:
        snap = monitor.snapshot(camera.id)
        if snap is not None:
            out[camera.id] = snap
    # Cameras another worker checks (in a cluster): their stored state.
    out.update(await monitor.store.states([c.id for c in cameras if c.id not in out]))
    return out


async def camera_rows(
    monitor: HealthMonitor, cameras: Sequence[Camera], state: str | None = None
) -> list[CameraHealth]:
    states = await _states(monitor, cameras)
    now = monitor.clock()
    uptime = await monitor.store.history.window([c.id for c in cameras], now - WINDOWS["24h"], now)
    rows: list[CameraHealth] = []
    for camera in cameras:
        s = states.get(camera.id, {})
        current = s.get("state", "unknown") if camera.enabled else "unknown"
        if state is not None and current != state:
            continue
        a = uptime[camera.id].availability
        rows.append(
            CameraHealth(
                camera=camera.id,
                name=camera.name,
                line=camera.line,
                mode=camera.mode,
                state=current,
                reasons=list(s.get("reasons", [])),
                since=s.get("since"),
                flapping=bool(s.get("flapping", False)),
                fps=s.get("fps"),
                bitrate_kbps=s.get("bitrate_kbps"),
                last_packet_age=s.get("last_packet_age"),
                last_error=s.get("last_error"),
                reconnects=int(s.get("reconnects", 0)),
                viewers=int(s.get("viewers", 0)),
                uptime_24h_pct=None if a is None else round(100 * a, 3),
            )
        )
    return rows


async def line_rows(
    monitor: HealthMonitor, cameras: Sequence[Camera], lines: Sequence[tuple[str, str, str]]
) -> list[LineHealth]:
    """``lines``: (id, name_zh, name_en) of the lines to report."""
    states = await _states(monitor, cameras)
    now = monitor.clock()
    ids = [c.id for c in cameras]
    windows = {
        name: await monitor.store.history.window(ids, now - seconds, now) for name, seconds in WINDOWS.items()
    }
    active = await monitor.alerts.store.active()
    out: list[LineHealth] = []
    for line_id, zh, en in lines:
        members = [c for c in cameras if c.line == line_id]
        counts = dict.fromkeys(STATES, 0)
        for c in members:
            counts[states.get(c.id, {}).get("state", "unknown") if c.enabled else "unknown"] += 1
        availability = {}
        for name, per_camera in windows.items():
            a = combine(per_camera[c.id] for c in members).as_dict()
            availability[name] = WindowAvailability(
                availability_pct=a["availability_pct"],
                healthy_pct=a["healthy_pct"],
                mttr_seconds=a["mttr_seconds"],
                incidents=a["incidents"],
            )
        out.append(
            LineHealth(
                line=line_id,
                name_zh=zh,
                name_en=en,
                cameras=len(members),
                states=counts,
                open_alerts=sum(1 for alert in active if alert.line == line_id),
                availability=availability,
            )
        )
    return out


async def camera_detail(monitor: HealthMonitor, camera: Camera) -> dict[str, Any]:
    """Current checks with measured values, recent transitions, availability and open alerts."""
    row = (await camera_rows(monitor, [camera]))[0]
    snap = monitor.snapshot(camera.id) or {}
    now = monitor.clock()
    availability = {
        name: (await monitor.store.history.window([camera.id], now - seconds, now))[camera.id].as_dict()
        for name, seconds in WINDOWS.items()
    }
    transitions = [t.as_dict() for t in await monitor.store.history.recent(camera.id, 50)]
    alerts = await monitor.alerts.store.query(camera=camera.id, limit=20)
    return {
        **row.model_dump(),
        "observed": snap.get("observed"),
        "observed_reasons": snap.get("observed_reasons", []),
        "diagnosis": snap.get("diagnosis"),
        "diagnosed_at": snap.get("diagnosed_at"),
        "probe": snap.get("probe"),
        "drops": snap.get("drops", 0),
        "availability": availability,
        "transitions": transitions,
        "alerts": [a.model_dump(mode="json") for a in alerts],
    }
