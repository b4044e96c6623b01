"""The /ws message bounds on their own: 4 KiB per message, 20 messages per second with bursts of 20."""

from __future__ import annotations

from videohub.api.ws import CLOSE_POLICY, CLOSE_TOO_BIG, MessageGate
from videohub.settings import WsSettings


class Clock:
    def __init__(self) -> None:
        self.now = 50.0

    def __call__(self) -> float:
        return self.now


def test_size_is_counted_in_bytes() -> None:
    gate = MessageGate(WsSettings(), Clock())
    assert gate.check("a" * 4096) is None
    assert gate.check("a" * 4097) == (CLOSE_TOO_BIG, "messages are at most 4096 bytes")
    # 1,366 CJK characters are 4,098 bytes in UTF-8.
    assert gate.check("摄" * 1366) == (CLOSE_TOO_BIG, "messages are at most 4096 bytes")
    assert gate.check("摄" * 1365) is None


def test_a_burst_of_20_passes_and_the_21st_in_the_same_second_does_not() -> None:
    clock = Clock()
    gate = MessageGate(WsSettings(), clock)
    assert all(gate.check("{}") is None for _ in range(20))
    assert gate.check("{}") == (CLOSE_POLICY, "more than 20 messages per second")


def test_a_steady_20_per_second_passes_for_ever() -> None:
    clock = Clock()
    gate = MessageGate(WsSettings(), clock)
    for _ in range(1000):
        assert gate.check('{"type":"ping"}') is None
        clock.now += 0.05
