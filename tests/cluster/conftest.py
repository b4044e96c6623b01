"""Fixtures of the cluster tests: a real Sentinel-managed Valkey (primary, replica, 3 Sentinels), and a
real cluster of three ``videohub serve --role all`` workers on one Valkey pulling 30 always_on cameras
from one simulator (tests/fixtures/cluster.py, tests/cluster/support.py)."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cluster.support import CameraFleet, SessionWatch, settle
from tests.fixtures.camsim import CameraSimulator
from tests.fixtures.cluster import ClusterHarness
from tests.fixtures.sentinel import SentinelCluster

# Three mounts at 360p share the 30 cameras (x264 costs ~5 % of a core per mount, not per camera).
MOUNTS = [f"c{i}:width=640,height=360,fps=10,gop=1,profile=baseline" for i in range(3)]
CAMERAS = 30
# Picture checks decode keyframes: once a minute instead of every few seconds keeps 30 cameras cheap.
# w3 reaches Redis through a proxy the Redis-link test cuts.
CLUSTER_ENV = {"VIDEOHUB_HEALTH__DIAGNOSIS_INTERVAL_SECONDS": "60"}
PROXIED = ("w3",)


@pytest.fixture
def sentinel_cluster(tmp_path: Path) -> Iterator[SentinelCluster]:
    cluster = SentinelCluster(
        tmp_path / "sentinel",
        password=f"dn-{secrets.token_hex(8)}",
        sentinel_password=f"sn-{secrets.token_hex(8)}",
    )
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.close()


@pytest.fixture(scope="session")
def cluster_sim() -> Iterator[CameraSimulator]:
    with CameraSimulator(preset="none", mounts=MOUNTS) as sim:
        yield sim


@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClusterHarness]:
    """Session-wide, so the Chromium module and the others share one cluster; each test leaves every
    worker running again (``settle``)."""
    harness = ClusterHarness(tmp_path_factory.mktemp("cluster"), 3, env=CLUSTER_ENV, proxied=PROXIED)
    try:
        harness.start()
        yield harness
    finally:
        harness.close()


@pytest.fixture(scope="session")
def fleet(cluster: ClusterHarness, cluster_sim: CameraSimulator) -> CameraFleet:
    return CameraFleet.register(cluster, cluster_sim, [m.split(":")[0] for m in MOUNTS], CAMERAS, "cc")


@pytest.fixture(scope="session")
def session_watch(fleet: CameraFleet) -> Iterator[SessionWatch]:
    """Samples the simulator's sessions through every cluster test that uses it."""
    watch = SessionWatch(fleet)
    yield watch.start()
    watch.stop()


@pytest.fixture
def settled(
    cluster: ClusterHarness, fleet: CameraFleet, session_watch: SessionWatch
) -> Iterator[dict[str, list[str]]]:
    """Every worker running and every camera pulled once, at the start; and, at the end, no camera
    was ever pulled twice outside an allowed hand-over."""
    for worker in cluster.workers.values():
        if worker.proxy is not None:
            worker.proxy.restore()
        if not worker.running:
            cluster.start_worker(worker.id)
    owned = settle(cluster, fleet)
    before = len(session_watch.overlaps)
    yield owned
    new = [o for o in session_watch.overlaps[before:] if not o.allowed]
    assert not new, f"cameras pulled twice at once: {new[:10]}"
