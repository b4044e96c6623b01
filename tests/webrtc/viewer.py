"""A real WebRTC player for tests and benchmarks: an aiortc peer that receives and decodes video."""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass, field

import av
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack


@dataclass
class Viewer:
    """``offer()`` → give the SDP to the server → ``accept(answer)`` → ``frame()`` yields decoded frames."""

    pc: RTCPeerConnection = field(default_factory=lambda: RTCPeerConnection(RTCConfiguration(iceServers=[])))
    track: MediaStreamTrack | None = None
    _got_track: asyncio.Event = field(default_factory=asyncio.Event)
    frames: int = 0
    first_frame_at: float | None = None

    async def offer(self) -> str:
        self.pc.addTransceiver("video", direction="recvonly")

        @self.pc.on("track")
        def _on_track(track: MediaStreamTrack) -> None:
            self.track = track
            self._got_track.set()

        await self.pc.setLocalDescription(await self.pc.createOffer())
        return str(self.pc.localDescription.sdp)

    async def accept(self, answer: str) -> None:
        await self.pc.setRemoteDescription(RTCSessionDescription(sdp=answer, type="answer"))

    async def frame(self, within: float = 20.0) -> av.VideoFrame:
        """The next decoded frame (raises TimeoutError, or MediaStreamError when the track ends)."""
        await asyncio.wait_for(self._got_track.wait(), within)
        assert self.track is not None
        frame = await asyncio.wait_for(self.track.recv(), within)
        assert isinstance(frame, av.VideoFrame)
        self.frames += 1
        if self.first_frame_at is None:
            self.first_frame_at = time.monotonic()
        return frame

    async def frames_until_end(self, within: float) -> bool:
        """Read frames until the track ends; True if it ended within ``within`` seconds."""
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            try:
                await self.frame(within=max(0.1, deadline - time.monotonic()))
            except MediaStreamError:
                return True
            except TimeoutError:
                return False
        return False

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await self.pc.close()
