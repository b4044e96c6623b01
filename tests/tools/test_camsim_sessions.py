"""The simulator's list of playing sessions (`GET /sessions`): who pulls which camera URL.

The cluster tests count at the camera that each of 30 cameras sharing one mount (`?cam=N`) is
ingested exactly once; that count is only as good as this list.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.fixtures.camsim import CameraSimulator
from tests.tools.rtsp_clients import Reader, rtsp_session, start_reader, wait_until

pytestmark = pytest.mark.media

MOUNT = "one:profile=baseline,fps=10,gop=1"


def test_two_clients_with_different_queries_on_one_mount_are_counted_apart(
    camsim_factory: Callable[..., CameraSimulator], readers: list[Reader]
) -> None:
    sim = camsim_factory(preset="none", mounts=[MOUNT])
    assert sim.sessions() == []
    first = start_reader(readers, sim.rtsp_url("one", {"cam": 7}))
    second = start_reader(readers, sim.rtsp_url("one", {"cam": 8}))
    assert wait_until(lambda: first.packets > 0 and second.packets > 0, 15), (first.outcome, second.outcome)
    assert wait_until(lambda: sim.sessions_by_query("one") == {"cam=7": 1, "cam=8": 1}, 5), sim.sessions()
    rows = sim.sessions()
    assert {row.path for row in rows} == {"/one"}
    assert len({row.session for row in rows}) == 2
    assert all(row.client.startswith("127.0.0.1:") for row in rows), rows
    # A second client of the same camera URL is a second session of that camera.
    third = start_reader(readers, sim.rtsp_url("one", {"cam": 7}))
    assert wait_until(lambda: third.packets > 0, 15), third.outcome
    assert wait_until(lambda: sim.sessions_by_query("one") == {"cam=7": 2, "cam=8": 1}, 5), sim.sessions()


def test_teardown_and_hang_up_remove_the_session(
    camsim_factory: Callable[..., CameraSimulator], readers: list[Reader]
) -> None:
    sim = camsim_factory(preset="none", mounts=[MOUNT])
    watcher = start_reader(readers, sim.rtsp_url("one", {"cam": 1}))
    assert wait_until(lambda: watcher.packets > 0, 15), watcher.outcome
    # A bare client that plays until its first packet, then says TEARDOWN (and hangs up).
    assert rtsp_session(sim.rtsp_url("one", {"cam": 2}), "teardown") == 200
    # One that plays and just closes its connection, as a killed ingest process does.
    assert rtsp_session(sim.rtsp_url("one", {"cam": 3}), "play") == 200
    assert wait_until(lambda: sim.sessions_by_query("one") == {"cam=1": 1}, 5), sim.sessions()
    watcher.halt()
    assert watcher.ended.wait(10)
    assert wait_until(lambda: sim.sessions() == [], 10), sim.sessions()


def test_a_session_that_has_not_played_is_not_counted_and_a_stopped_mount_drops_its_sessions(
    camsim_factory: Callable[..., CameraSimulator], readers: list[Reader]
) -> None:
    sim = camsim_factory(preset="none", mounts=[MOUNT])
    # DESCRIBE and SETUP only: no PLAY, so nobody pulls the camera yet.
    assert rtsp_session(sim.rtsp_url("one", {"cam": 4}), "setup") == 200
    watcher = start_reader(readers, sim.rtsp_url("one", {"cam": 5}))
    assert wait_until(lambda: watcher.packets > 0, 15), watcher.outcome
    assert sim.sessions_by_query("one") == {"cam=5": 1}
    sim.stop_mount("one")
    assert watcher.ended.wait(10)
    assert wait_until(lambda: sim.sessions() == [], 5), sim.sessions()
