"""The health state of one camera stream: ``unknown → online / degraded / offline``, with reasons.

Observations come in often (every stats tick, every diagnosis); the state only changes after the
observed condition has lasted its hold time, so a single late packet or one odd keyframe does not
raise an alert. A camera that changes state ``flapping_transitions`` times within the window is
``flapping``: it gets one ``flapping`` alert instead of an alert storm, until it has calmed down.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from videohub.settings.health import HealthSettings

State = Literal["unknown", "online", "degraded", "offline"]
Observed = Literal["online", "degraded", "offline"]
AlertKind = Literal["offline", "degraded", "flapping"]
STATES: tuple[State, ...] = ("unknown", "online", "degraded", "offline")
Clock = Callable[[], float]


@dataclass(frozen=True, slots=True)
class Transition:
    """A state change, as recorded in the availability history and pushed to the UI."""

    camera: str
    at: float
    """Wall-clock seconds (epoch)."""
    old: State
    new: State
    reasons: tuple[str, ...]

    def as_dict(self) -> dict[str, Any]:
        return {
            "camera": self.camera,
            "at": self.at,
            "old": self.old,
            "new": self.new,
            "reasons": list(self.reasons),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Transition:
        return cls(
            camera=str(data["camera"]),
            at=float(data["at"]),
            old=data["old"],
            new=data["new"],
            reasons=tuple(data.get("reasons", ())),
        )


class StreamHealth:
    """Held state, reasons and flapping of one camera stream; owned by the ``HealthMonitor``.

    Pure logic with an injected clock: the monitor feeds ``observe`` and reconciles alerts with
    ``desired_alerts``; tests drive it with a fake clock.
    """

    def __init__(self, camera: str, settings: HealthSettings, clock: Clock) -> None:
        self.camera = camera
        self.settings = settings
        self._clock = clock
        self.state: State = "unknown"
        self.reasons: tuple[str, ...] = ()
        self.since = clock()
        self.flapping = False
        self._pending: tuple[Observed, float] | None = None
        self._changes: deque[float] = deque()
        self.observed: Observed | None = None
        self.observed_reasons: tuple[str, ...] = ()

    def _hold(self, target: Observed) -> float:
        s = self.settings
        if target == "offline":
            return s.offline_hold_seconds
        if target == "degraded":
            return s.degraded_hold_seconds
        # First sight of a working stream needs no proof of stability.
        return 0.0 if self.state == "unknown" else s.recover_hold_seconds

    def observe(self, status: Observed, reasons: tuple[str, ...] = ()) -> Transition | None:
        """Feed the current raw condition; returns the transition when the held state changes."""
        now = self._clock()
        self.observed, self.observed_reasons = status, reasons
        self._update_flapping(now)
        if status == self.state:
            self._pending = None
            if status != "online":
                self.reasons = reasons  # e.g. degraded: black → frozen updates the open alert
            return None
        if self._pending is None or self._pending[0] != status:
            self._pending = (status, now)
        if now - self._pending[1] < self._hold(status):
            return None
        transition = Transition(self.camera, now, self.state, status, reasons if status != "online" else ())
        self.state, self.reasons, self.since = status, transition.reasons, now
        self._pending = None
        if transition.old != "unknown":
            self._changes.append(now)
            self._update_flapping(now)
        return transition

    def _update_flapping(self, now: float) -> None:
        s = self.settings
        while self._changes and now - self._changes[0] > s.flapping_window_seconds:
            self._changes.popleft()
        if not self.flapping and len(self._changes) >= s.flapping_transitions:
            self.flapping = True
        elif self.flapping and len(self._changes) <= s.flapping_transitions // 2 and self.state == "online":
            # Calm again: fewer than half the limit within the window, and working.
            self.flapping = False

    def desired_alerts(self) -> dict[AlertKind, tuple[str, ...]]:
        """The alerts that should be open now (kind → reasons); the alert service reconciles to this."""
        if self.flapping:
            return {"flapping": (f"{len(self._changes)} changes", *self.reasons)}
        if self.state == "offline":
            return {"offline": self.reasons}
        if self.state == "degraded":
            return {"degraded": self.reasons}
        return {}

    def adopt(self, stored: dict[str, Any]) -> None:
        """Continue from the state another worker stored (this worker takes over checking the
        camera), so the hand-over itself is no transition: an online camera stays online, an open
        outage stays open with its start."""
        state = stored.get("state")
        if state not in ("online", "degraded", "offline"):
            return
        self.state = state
        self.reasons = tuple(str(r) for r in stored.get("reasons") or ())
        since = stored.get("since")
        self.since = float(since) if isinstance(since, int | float) else self._clock()
        self.flapping = bool(stored.get("flapping"))
        self._pending = None

    def snapshot(self) -> dict[str, Any]:
        return {
            "camera": self.camera,
            "state": self.state,
            "reasons": list(self.reasons),
            "since": self.since,
            "flapping": self.flapping,
            "observed": self.observed,
            "observed_reasons": list(self.observed_reasons),
        }
