"""Alert reconciling: each camera's wanted alerts (from its held state) brought to the AlertService.

Between the monitor's state machines and ``videohub.alerts``: a camera whose wanted alerts changed is
reconciled once; a failed update (Redis away) is retried by the next tick, and the outage is logged
a few lines in all, not once per camera.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from videohub.alerts.service import AlertService
from videohub.fence import Fence, Fenced
from videohub.health.tracker import Tracked
from videohub.models import Camera
from videohub.store import OUTAGE, OutageLog

log = logging.getLogger(__name__)


class AlertReconciler:
    """Keeps ``Tracked.reconciled`` (what the AlertService was last told) in line with the state."""

    def __init__(self, alerts: AlertService, fence: Callable[[Camera], Fence | None] | None = None) -> None:
        """``fence``: in a cluster, the lease a camera's alert writes are fenced by (None: unfenced)."""
        self.alerts = alerts
        self._fence = fence
        self._outage = OutageLog(log, "health: alert updates")

    @staticmethod
    def pending(t: Tracked) -> bool:
        """The camera's wanted alerts differ from what the AlertService was last told."""
        return t.health.state != "unknown" and t.health.desired_alerts() != t.reconciled

    async def reconcile(self, t: Tracked) -> None:
        """Bring the camera's alerts in line with its state; a failure is retried by the next tick."""
        if not self.pending(t):
            return
        desired = t.health.desired_alerts()
        fence = self._fence(t.camera) if self._fence is not None else None
        try:
            await self.alerts.reconcile(t.camera.id, t.camera.line, desired, fence)
        except OUTAGE as exc:
            self._outage.failed(exc)  # retried by the next tick
            return
        except Fenced:
            # The camera moved to another worker since this one last checked: its new owner decides.
            log.info("camera %s: alert update dropped, its lease moved to another worker", t.camera.id)
            t.reconciled = dict(desired)
            return
        self._outage.ok()
        t.reconciled = dict(desired)

    async def resolve(self, camera_id: str, line: str) -> None:
        """The camera is gone (deleted, disabled, or deleted while this worker was away)."""
        await self.alerts.reconcile(camera_id, line, {})
