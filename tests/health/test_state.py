"""The per-stream state machine with an injected clock: hold times, reasons, flapping."""

from __future__ import annotations

from videohub.health.state import StreamHealth
from videohub.settings.health import HealthSettings


class Clock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def make() -> tuple[StreamHealth, Clock]:
    clock = Clock()
    settings = HealthSettings(
        offline_hold_seconds=0,
        degraded_hold_seconds=5,
        recover_hold_seconds=5,
        flapping_transitions=4,
        flapping_window_seconds=60,
    )
    return StreamHealth("cam1", settings, clock), clock


def test_unknown_becomes_online_at_first_sight() -> None:
    h, _ = make()
    assert h.state == "unknown"
    t = h.observe("online")
    assert t is not None and (t.old, t.new) == ("unknown", "online")
    assert h.desired_alerts() == {}


def test_offline_with_reason_then_recovers_only_after_hold() -> None:
    h, clock = make()
    h.observe("online")
    t = h.observe("offline", ("refused",))
    assert t is not None and t.new == "offline" and t.reasons == ("refused",)
    assert h.desired_alerts() == {"offline": ("refused",)}
    clock.advance(1)
    assert h.observe("online") is None  # not yet healthy for the hold time
    clock.advance(3)
    assert h.observe("online") is None
    assert h.state == "offline"
    clock.advance(2)
    t = h.observe("online")
    assert t is not None and (t.old, t.new) == ("offline", "online")
    assert h.desired_alerts() == {}


def test_brief_degradation_shorter_than_hold_does_not_change_state() -> None:
    h, clock = make()
    h.observe("online")
    h.observe("degraded", ("black",))
    clock.advance(3)
    h.observe("degraded", ("black",))
    clock.advance(1)
    assert h.observe("online") is None
    clock.advance(10)
    assert h.observe("degraded", ("black",)) is None  # hold restarts
    assert h.state == "online"


def test_degraded_after_hold_and_reasons_follow_the_picture() -> None:
    h, clock = make()
    h.observe("online")
    h.observe("degraded", ("black",))
    clock.advance(5)
    t = h.observe("degraded", ("black",))
    assert t is not None and t.new == "degraded"
    assert h.desired_alerts() == {"degraded": ("black",)}
    clock.advance(10)
    assert h.observe("degraded", ("frozen",)) is None
    assert h.desired_alerts() == {"degraded": ("frozen",)}


def test_offline_while_degraded_replaces_the_degraded_alert() -> None:
    h, clock = make()
    h.observe("online")
    h.observe("degraded", ("black",))
    clock.advance(6)
    h.observe("degraded", ("black",))
    h.observe("offline", ("stalled",))
    assert h.desired_alerts() == {"offline": ("stalled",)}


def test_flapping_gives_one_flapping_alert_and_calms_down() -> None:
    h, clock = make()
    h.observe("online")
    kinds: list[set[str]] = []
    for _ in range(3):
        clock.advance(1)
        h.observe("offline", ("refused",))
        kinds.append(set(h.desired_alerts()))
        clock.advance(6)
        h.observe("online")
        clock.advance(6)
        h.observe("online")
        kinds.append(set(h.desired_alerts()))
    assert h.flapping
    # Before flapping: offline alerts; from the 4th change on: one flapping alert only.
    assert kinds[0] == {"offline"} and kinds[1] == set()
    assert kinds[-1] == {"flapping"}
    clock.advance(1)
    h.observe("offline", ("refused",))
    assert set(h.desired_alerts()) == {"flapping"}  # no offline alert while flapping
    clock.advance(6)
    h.observe("online")
    clock.advance(6)
    h.observe("online")
    clock.advance(120)  # a quiet window
    h.observe("online")
    assert not h.flapping
    assert h.desired_alerts() == {}


def test_snapshot_reports_raw_observation_and_held_state() -> None:
    h, _ = make()
    h.observe("online")
    h.observe("degraded", ("frozen",))
    snap = h.snapshot()
    assert snap["state"] == "online" and snap["observed"] == "degraded"
    assert snap["observed_reasons"] == ["frozen"]
