"""``videohub serve --workers 2``: two worker processes behind one port, a crashed one started again,
SIGTERM stops them all with exit code 0."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from tests.fixtures.cluster import wait_for
from tests.fixtures.service import VideohubService


def workers(service: VideohubService) -> list[dict[str, Any]]:
    try:
        found: list[dict[str, Any]] = service.call("GET", "/api/workers")["workers"]
    except httpx.TransportError:  # a kept-alive connection to the worker just killed is reset
        return []
    return found


def test_two_workers_share_the_port_a_crashed_one_comes_back_and_sigterm_stops_all(
    videohub_service_factory: Callable[..., VideohubService],
) -> None:
    service = videohub_service_factory(args=["--workers", "2"])
    wait_for(lambda: len(workers(service)) == 2, 20, "two workers listed")
    first = {w["id"]: w["pid"] for w in workers(service)}
    assert len(set(first.values())) == 2 and service.pid not in first.values()
    victim_id, victim_pid = sorted(first.items())[0]
    os.kill(victim_pid, signal.SIGKILL)
    wait_for(
        lambda: {w["id"]: w["pid"] for w in workers(service)}.get(victim_id) not in (None, victim_pid),
        30,
        f"worker {victim_id} started again",
    )
    pids = [w["pid"] for w in workers(service)]

    os.kill(service.pid, signal.SIGTERM)  # the supervisor only: it stops its workers itself
    deadline = time.monotonic() + 60
    while service.running and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not service.running, "the supervisor did not stop"
    assert service._proc.returncode == 0, service.log_text()
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
