"""The simulator under connection churn, as the probe cycle and the alert benchmarks drive it.

A probe cycle opens and drops sessions on one shared mount by the hundred (issue 5: 10,000 cameras
probed every 5 minutes, 6,000 of them on one mount in the benchmark); the alert benchmarks switch a
camera off and on again and again while clients watch it.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.fixtures.camsim import CameraSimulator, rtsp_describe
from tests.tools.rtsp_clients import Reader, rtsp_session, start_reader, wait_until

pytestmark = pytest.mark.media

MOUNT = "one:profile=baseline,fps=10,gop=1"
# Half the clients watch until the first packet and say TEARDOWN; the others hang up midway.
LEAVE_AFTER = ("teardown", "describe", "teardown", "setup", "teardown", "play")


def test_many_clients_connecting_and_dropping_a_shared_mount_do_not_crash_it(
    camsim_factory: Callable[..., CameraSimulator], readers: list[Reader]
) -> None:
    # Before the simulator held its media, about 250 such sessions (8 at a time) aborted it in
    # gst-rtsp-server (gst_rtsp_media_get_rates: assertion failed).
    sim = camsim_factory(preset="none", mounts=[MOUNT])
    statuses: list[int] = []

    def session(i: int) -> int:
        return rtsp_session(sim.rtsp_url("one", {"cam": i}), LEAVE_AFTER[i % len(LEAVE_AFTER)])

    # In bursts, as a probe scheduler starts them: 16 clients at once on a mount that has just gone
    # idle, then the next 16 when those are done.
    with ThreadPoolExecutor(16) as pool:
        for burst in range(40):
            statuses += pool.map(session, range(burst * 16, (burst + 1) * 16))
    assert sim.alive, sim.stderr_text()
    assert statuses == [200] * 640
    reader = start_reader(readers, sim.rtsp_url("one"))
    assert wait_until(lambda: reader.packets > 0, 15), reader.outcome


def test_probing_a_mount_nobody_else_watches_works_every_time(
    camsim_factory: Callable[..., CameraSimulator],
) -> None:
    # One client at a time: the mount goes idle between sessions, its encoder pauses and resumes.
    sim = camsim_factory(preset="none", mounts=[MOUNT])
    for i in range(40):
        assert rtsp_session(sim.rtsp_url("one", {"cam": i}), "teardown") == 200
    assert sim.alive, sim.stderr_text()


def test_mount_stopped_and_started_30_times_comes_back_every_time(
    camsim_factory: Callable[..., CameraSimulator], readers: list[Reader]
) -> None:
    sim = camsim_factory(preset="none", mounts=[MOUNT])
    url = sim.rtsp_url("one")
    for cycle in range(30):
        watchers = [start_reader(readers, sim.rtsp_url("one", {"cam": i})) for i in range(2)]

        def streaming(w: list[Reader] = watchers) -> bool:
            return all(r.packets > 0 for r in w)

        assert wait_until(streaming, 15), (cycle, [r.outcome for r in watchers])
        assert sim.stop_mount("one")["state"] == "stopped"
        assert all(r.ended.wait(10) for r in watchers), cycle
        assert rtsp_describe(url).status == 404, cycle
        assert sim.start_mount("one")["state"] == "running"
        assert rtsp_describe(url).status == 200, cycle
    assert sim.alive, sim.stderr_text()
