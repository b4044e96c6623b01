"""What the cluster tests watch the cluster with: the camera's side and the viewer's side.

- `CameraFleet`: the always_on cameras registered on the cluster, spread over a few simulator mounts
  (``?cam=N`` tells them apart at the simulator), and their RTSP sessions as the simulator counts them.
- `SessionWatch`: a thread that samples the simulator's sessions all along and records every moment a
  camera was pulled twice (an overlap is allowed only inside ``allow_overlap()``: a SIGTERM hand-over
  starts the new owner before the old one stops, by design).
- `whep_play` / `Watcher`: real aiortc viewers (tests/webrtc/viewer.py) over WHEP; a `Watcher` plays
  one camera from its owner, and when the picture stops it asks Redis who owns the camera now and
  plays from there, noting which worker each frame came from.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from urllib.parse import urljoin

import httpx
from aiortc.mediastreams import MediaStreamError

from tests.fixtures.camsim import CameraSimulator, CameraSimulatorError
from tests.fixtures.cluster import ClusterHarness, wait_for
from tests.fixtures.service import VideohubService
from tests.webrtc.viewer import Viewer

SDP = "application/sdp"


@dataclass(frozen=True)
class CameraFleet:
    """Camera ids and the simulator URL (path, query) each one pulls."""

    sim: CameraSimulator
    urls: dict[str, tuple[str, str]]

    @classmethod
    def register(
        cls, cluster: ClusterHarness, sim: CameraSimulator, mounts: list[str], count: int, prefix: str
    ) -> CameraFleet:
        urls: dict[str, tuple[str, str]] = {}
        entry = cluster.entry()
        for i in range(count):
            camera, mount = f"{prefix}-{i:02d}", mounts[i % len(mounts)]
            entry.create_camera(camera, sim.rtsp_url(mount, {"cam": i}), mode="always_on")
            urls[camera] = (f"/{mount}", f"cam={i}")
        return cls(sim, urls)

    @property
    def ids(self) -> list[str]:
        return list(self.urls)

    def sessions(self) -> dict[str, list[str]]:
        """Camera id → ids of the RTSP sessions pulling it now, at the simulator."""
        by_url = {url: camera for camera, url in self.urls.items()}
        found: dict[str, list[str]] = {camera: [] for camera in self.urls}
        for row in self.sim.sessions():
            camera = by_url.get((row.path, row.query))
            if camera is not None:
                found[camera].append(row.session)
        return found

    def pulled_once(self) -> bool:
        return all(len(ids) == 1 for ids in self.sessions().values())


@dataclass
class Overlap:
    at: float
    camera: str
    sessions: int
    allowed: bool


class SessionWatch:
    """Samples `CameraFleet.sessions()` every `interval` s in a thread; records cameras pulled twice."""

    def __init__(self, fleet: CameraFleet, interval: float = 0.25) -> None:
        self.fleet = fleet
        self.interval = interval
        self.overlaps: list[Overlap] = []
        self.samples = 0
        self._allowed = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="session-watch", daemon=True)

    def start(self) -> SessionWatch:
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                sessions = self.fleet.sessions()
            except (CameraSimulatorError, OSError, httpx.HTTPError):
                continue
            self.samples += 1
            now = time.monotonic()
            for camera, ids in sessions.items():
                if len(ids) > 1:
                    self.overlaps.append(Overlap(now, camera, len(ids), self._allowed > 0))

    @contextlib.contextmanager
    def allow_overlap(self) -> Iterator[None]:
        """A SIGTERM hand-over: the new owner starts before the old one stops (counted, allowed)."""
        self._allowed += 1
        try:
            yield
        finally:
            self._allowed -= 1

    def unexpected(self) -> list[Overlap]:
        return [o for o in self.overlaps if not o.allowed]

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)


# ---- viewers ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Playback:
    viewer: Viewer
    location: str  # absolute session URL
    via: VideohubService


async def whep_post(service: VideohubService, camera: str, offer: str) -> httpx.Response:
    async with httpx.AsyncClient(base_url=service.base_url, timeout=30.0) as client:
        return await client.post(
            f"/whep/{camera}", content=offer, headers={**service.auth(), "Content-Type": SDP}
        )


async def whep_play(service: VideohubService, camera: str) -> Playback:
    """POST an offer to ``service`` for ``camera`` (following a 307), accept the answer, return the
    playback once the first frame is decoded. A failed attempt closes its peer connection."""
    viewer = Viewer()
    try:
        offer = await viewer.offer()
        response = await whep_post(service, camera, offer)
        location_base = service.base_url
        if response.status_code == 307:  # whep_routing=redirect: the owner's own URL
            url = response.headers["location"]
            async with httpx.AsyncClient(timeout=30.0) as client:
                headers = {**service.auth(), "Content-Type": SDP}
                response = await client.post(url, content=offer, headers=headers)
            location_base = url
        assert response.status_code == 201, f"WHEP POST {camera}: {response.status_code} {response.text}"
        await viewer.accept(response.text)
        await viewer.frame(within=20)
    except BaseException:
        await viewer.close()
        raise
    return Playback(viewer, urljoin(location_base + "/", response.headers["location"]), service)


@dataclass
class Watcher:
    """Plays one camera from whichever worker owns it, across hand-overs, noting each frame's source."""

    cluster: ClusterHarness
    camera: str
    stall: float = 0.5
    frames: list[tuple[float, str]] = field(default_factory=list)
    reconnects: int = 0
    _task: asyncio.Task[None] | None = None
    _stop: asyncio.Event = field(default_factory=asyncio.Event)

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        while not self._stop.is_set():
            owner = await asyncio.to_thread(self.cluster.owner_of, self.camera)
            if owner is None or not self.cluster.workers[owner].running:
                await asyncio.sleep(0.05)
                continue
            try:
                playback = await whep_play(self.cluster.workers[owner].require(), self.camera)
            except (AssertionError, httpx.HTTPError, TimeoutError, MediaStreamError):
                await asyncio.sleep(0.1)
                continue
            self.frames.append((time.monotonic(), owner))
            await self._play(playback, owner)
            self.reconnects += 1

    async def _play(self, playback: Playback, owner: str) -> None:
        try:
            while not self._stop.is_set():
                await playback.viewer.frame(within=self.stall)
                self.frames.append((time.monotonic(), owner))
        except (TimeoutError, MediaStreamError):
            pass  # the picture stopped: find the owner again
        finally:
            await playback.viewer.close()

    def sources(self) -> list[str]:
        """The workers frames came from, in order, each run once."""
        runs: list[str] = []
        for _, source in self.frames:
            if not runs or runs[-1] != source:
                runs.append(source)
        return runs

    def gap_after(self, worker: str) -> float | None:
        """Seconds from the last frame from ``worker`` to the next frame from another worker."""
        last = None
        for at, source in self.frames:
            if source == worker:
                last = at
            elif last is not None:
                return at - last
        return None

    def frames_from(self, worker: str, since: float = 0.0) -> int:
        return sum(1 for at, source in self.frames if source == worker and at >= since)

    async def stop(self) -> None:
        self._stop.set()
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.wait_for(self._task, 10)


STABLE_SECONDS = 2.0
"""Owners unchanged this long count as settled: longer than a worker takes to see a new heartbeat
(its directory is read every second) and make its next placement step (0.25 s), so the moves a
restarted worker's return causes are over."""


def settle(cluster: ClusterHarness, fleet: CameraFleet, timeout: float = 60.0) -> dict[str, list[str]]:
    """Wait until every worker runs, every camera has a streaming owner and exactly one RTSP session,
    and the owners stay the same for ``STABLE_SECONDS``; return worker id → its cameras."""
    deadline = time.monotonic() + timeout
    wait_for(lambda: cluster.live_ids() == set(cluster.workers), timeout, "every worker heartbeating")

    def streaming() -> dict[str, list[str]]:
        wait_for(
            lambda: all(cluster.streaming_on(c) for c in fleet.ids) and fleet.pulled_once(),
            max(1.0, deadline - time.monotonic()),
            "every camera streaming on its owner and pulled once",
            interval=0.5,
        )
        return cluster.owned_by(fleet.ids)

    owners = streaming()
    while True:
        time.sleep(STABLE_SECONDS)
        again = streaming()
        if again == owners:
            return owners
        assert time.monotonic() < deadline, f"owners still moving after {timeout} s: {owners} → {again}"
        owners = again
