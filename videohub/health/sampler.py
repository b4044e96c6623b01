"""The keyframe sampler: picture checks on the keyframes the Feed already holds, and on probe frames.

Between the Feed hub (``HubView.latest_keyframe``) and the per-camera ``PictureDiagnoser``. Only
keyframes are decoded (decision 5), one per camera per ``diagnosis_interval_seconds`` (the monitor's
loop), each in a worker thread and at most ``DECODE_SLOTS`` at once, so checks never block the loop.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from typing import Protocol

from ingest.keyframe import decode_keyframe_picture
from ingest.packet import Packet
from videohub.health.diagnosis import Diagnosis
from videohub.health.metrics import Frame
from videohub.health.tracker import Tracked
from videohub.hub.latest import PictureSink

DECODE_SLOTS = 2


class KeyframeSource(Protocol):
    def latest_keyframe(self, camera_id: str) -> Packet | None: ...


class KeyframeSampler:
    """Decodes and diagnoses keyframes off the loop; records the diagnosis on the camera's ``Tracked``."""

    def __init__(self, width: int, clock: Callable[[], float], pictures: PictureSink | None = None) -> None:
        self.width = width
        self.clock = clock
        self.pictures = pictures
        """Given the same decode as a JPEG when it wants one (the wall's latest picture)."""
        self._slots = asyncio.Semaphore(DECODE_SLOTS)

    async def sample(self, cameras: Iterable[Tracked], hub: KeyframeSource) -> None:
        """Diagnose the newest keyframe of every pulled camera that has a new one."""
        for t in list(cameras):
            packet = hub.latest_keyframe(t.camera.id)
            if packet is None or packet is t.last_keyframe:
                continue
            t.last_keyframe = packet
            await self.diagnose_packet(t, packet)

    async def diagnose_packet(self, t: Tracked, packet: Packet) -> Diagnosis | None:
        width = self.width
        pictures = self.pictures
        picture_width = pictures.width if pictures and pictures.wants_keyframe(t.camera.id) else None
        jpeg: bytes | None = None

        def work() -> Diagnosis | None:
            nonlocal jpeg
            frame, jpeg = decode_keyframe_picture(packet, width, picture_width)
            return None if frame is None else t.diagnoser.diagnose(frame)

        async with self._slots:
            result = await asyncio.to_thread(work)
        if result is not None:
            t.diagnosis, t.diagnosed_at = result, self.clock()
        if pictures is not None and jpeg is not None:
            await pictures.keyframe(t.camera, jpeg, packet.received)
        return result

    async def diagnose_frame(self, t: Tracked, frame: Frame) -> Diagnosis:
        """A frame a probe decoded already."""
        async with self._slots:
            diagnosis = await asyncio.to_thread(t.diagnoser.diagnose, frame)
        t.diagnosis, t.diagnosed_at = diagnosis, self.clock()
        return diagnosis
