"""Server CPU per WHEP viewer track at 1, 10, 50 and 100 viewers of one 720p ~2 Mbit/s feed.

    .venv/bin/python bench/fanout_cpu.py [--levels 1,10,50,100] [--window 8] [--out FILE]

Three kinds of process, so that only the server's work is measured:
- the server: the real ``SessionManager`` (passthrough track, aiortc packetizing, SRTP, UDP) fed by a
  replay of a pre-encoded clip (encoding happens once, before measuring, so the feed costs ~nothing);
- viewer processes (10 players each, niced): real aiortc peers doing ICE, DTLS-SRTP and RTCP, with
  decoding switched off (decoding 100 × 720p would swamp the machine and is not the server's cost);
- this driver: relays offers and answers, reads the server's CPU time from /proc.

Prints one JSON object per level: server CPU % of one core, its increase per viewer over the idle
server, and the frames the viewers received (proves the video really flowed).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from fractions import Fraction
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

WIDTH, HEIGHT, FPS, GOP, BITRATE, CLIP_SECONDS = 1280, 720, 25, 50, 2_000_000, 4
PER_PROCESS = 10
TB = Fraction(1, 90_000)


# ---- server process ---------------------------------------------------------------------------


def encode_clip() -> list[tuple[bytes, bool]]:
    """A 720p clip at ~2 Mbit/s (moving bars over noise, so x264 spends its bitrate)."""
    import av
    import numpy as np

    ctx = av.CodecContext.create("libx264", "w")
    ctx.width, ctx.height, ctx.pix_fmt = WIDTH, HEIGHT, "yuv420p"
    ctx.time_base, ctx.framerate = TB, Fraction(FPS, 1)
    ctx.gop_size, ctx.max_b_frames, ctx.bit_rate = GOP, 0, BITRATE
    ctx.options = {
        "preset": "superfast",
        "tune": "zerolatency",
        "profile": "high",
        "x264-params": f"keyint={GOP}:min-keyint={GOP}:scenecut=0:vbv-maxrate={BITRATE // 1000}:"
        f"vbv-bufsize={BITRATE // 1000}",
    }
    rng = np.random.default_rng(1)
    out: list[tuple[bytes, bool]] = []
    frames = CLIP_SECONDS * FPS
    for i in range(frames + 8):
        img = rng.integers(0, 60, (HEIGHT, WIDTH, 3), dtype=np.uint8)
        x = (i * 16) % WIDTH
        img[:, x : x + 160] = (230, 180, 40)
        frame = av.VideoFrame.from_ndarray(img, format="rgb24").reformat(format="yuv420p")
        frame.pts, frame.time_base = i * (90_000 // FPS), TB
        for packet in ctx.encode(frame if i < frames else None):
            out.append((bytes(packet), bool(packet.is_keyframe)))
        if i >= frames:
            break
    return out[:frames]


class ReplaySubscription:
    def __init__(self, feed: ReplayFeed) -> None:
        self._feed = feed
        self._queue: asyncio.Queue[Any] = asyncio.Queue(maxsize=120)
        self.drops = 0
        for packet in feed.gop:
            self._queue.put_nowait(packet)

    def push(self, packet: Any) -> None:
        if self._queue.full():
            self.drops += 1
            return
        self._queue.put_nowait(packet)

    async def get(self) -> Any:
        return await self._queue.get()

    def close(self) -> None:
        self._feed.subs.discard(self)


class ReplayFeed:
    """The clip, looped at real time, fanned out to subscribers (GOP cache for a fast start)."""

    def __init__(self, clip: list[tuple[bytes, bool]]) -> None:
        self.clip = clip
        self.subs: set[ReplaySubscription] = set()
        self.gop: list[Any] = []

    async def subscribe(self, camera: Any, stream: str) -> ReplaySubscription:
        sub = ReplaySubscription(self)
        self.subs.add(sub)
        return sub

    async def run(self) -> None:
        from ingest.packet import Packet

        start, i, step = time.monotonic(), 0, 90_000 // FPS
        while True:
            data, key = self.clip[i % len(self.clip)]
            packet = Packet(data=data, pts=i * step, time_base=TB, keyframe=key, received=time.monotonic())
            if key:
                self.gop = []
            self.gop.append(packet)
            for sub in list(self.subs):
                sub.push(packet)
            i += 1
            await asyncio.sleep(max(0.0, start + i / FPS - time.monotonic()))


async def serve() -> None:
    from videohub.models import Camera, Streams, StreamSpec, User
    from videohub.settings.webrtc import WebRTCSettings
    from videohub.webrtc.manager import SessionManager

    feed = ReplayFeed(await asyncio.to_thread(encode_clip))
    now = datetime.now(UTC)
    camera = Camera(
        id="bench",
        name="bench",
        line="public_security",
        streams=Streams(main=StreamSpec(url="rtsp://127.0.0.1/bench")),
        created_at=now,
        updated_at=now,
    )
    manager = SessionManager(WebRTCSettings(max_sessions=1000, disconnect_grace_seconds=25), feed)
    await manager.start()
    player = asyncio.create_task(feed.run())
    bits = sum(len(d) for d, _ in feed.clip) * 8 / CLIP_SECONDS
    print(json.dumps({"ready": True, "bitrate": round(bits)}), flush=True)
    loop = asyncio.get_running_loop()
    user = User(username="bench", role="operator")
    try:
        while True:
            line = await loop.run_in_executor(None, sys.stdin.readline)
            if not line:
                break
            request = json.loads(line)
            session = await manager.create(user, camera, "main", request["offer"])
            print(json.dumps({"id": request["id"], "answer": session.answer_sdp}), flush=True)
    finally:
        player.cancel()
        await manager.close()


# ---- viewer process ---------------------------------------------------------------------------


class _CountingDecoder:
    frames = 0

    def decode(self, encoded_frame: Any) -> list[Any]:
        _CountingDecoder.frames += 1
        return []


async def view(count: int) -> None:
    import aiortc.rtcrtpreceiver as receiver_module
    from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription

    # The viewer's decoding is not the server's cost: count frames instead of decoding them.
    setattr(receiver_module, "get_decoder", lambda codec: _CountingDecoder())  # noqa: B010
    loop = asyncio.get_running_loop()
    pcs = []
    for i in range(count):
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        pc.addTransceiver("video", direction="recvonly")
        await pc.setLocalDescription(await pc.createOffer())
        pcs.append(pc)
        print(json.dumps({"id": i, "offer": pc.localDescription.sdp}), flush=True)
    for _ in range(count):
        reply = json.loads(await loop.run_in_executor(None, sys.stdin.readline))
        await pcs[reply["id"]].setRemoteDescription(RTCSessionDescription(sdp=reply["answer"], type="answer"))
    while True:
        line = await loop.run_in_executor(None, sys.stdin.readline)
        if not line:
            break
        print(json.dumps({"frames": _CountingDecoder.frames}), flush=True)
    for pc in pcs:
        await pc.close()


# ---- driver -----------------------------------------------------------------------------------


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass
class Proc:
    proc: asyncio.subprocess.Process

    async def send(self, obj: dict[str, Any]) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write((json.dumps(obj) + "\n").encode())
        await self.proc.stdin.drain()

    async def recv(self, timeout: float = 120) -> dict[str, Any]:  # noqa: ASYNC109
        assert self.proc.stdout is not None
        line = await asyncio.wait_for(self.proc.stdout.readline(), timeout)
        if not line:
            raise RuntimeError("child process ended")
        data: dict[str, Any] = json.loads(line)
        return data

    async def stop(self) -> None:
        if self.proc.returncode is None:
            assert self.proc.stdin is not None
            self.proc.stdin.close()
            try:
                await asyncio.wait_for(self.proc.wait(), 15)
            except TimeoutError:
                self.proc.kill()
                await self.proc.wait()


async def spawn(*args: str, nice: bool = False) -> Proc:
    cmd = [sys.executable, __file__, *args]
    if nice:
        cmd = ["nice", "-n", "15", *cmd]
    proc = await asyncio.create_subprocess_exec(
        *cmd,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        cwd=REPO,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )
    return Proc(proc)


async def measure(server: Proc, window: float) -> float:
    before, t0 = cpu_seconds(server.proc.pid), time.monotonic()
    await asyncio.sleep(window)
    return 100.0 * (cpu_seconds(server.proc.pid) - before) / (time.monotonic() - t0)


async def drive(levels: list[int], window: float, warmup: float) -> list[str]:
    server = await spawn("serve")
    viewers: list[Proc] = []
    lines: list[str] = []
    try:
        ready = await server.recv(timeout=300)
        idle = await measure(server, window)
        base = {"bench": "fanout_cpu", "width": WIDTH, "height": HEIGHT, "fps": FPS}
        base["feed_bitrate"] = ready["bitrate"]
        first = {**base, "viewers": 0, "server_cpu_pct": round(idle, 2)}
        lines.append(json.dumps(first))
        print(lines[-1], flush=True)
        total = 0
        for level in levels:
            while total < level:
                n = min(PER_PROCESS, level - total)
                viewer = await spawn("view", "--count", str(n), nice=True)
                offers = [await viewer.recv() for _ in range(n)]
                for offer in offers:
                    await server.send({"id": offer["id"], "offer": offer["offer"]})
                    await viewer.send(await server.recv())
                viewers.append(viewer)
                total += n
            await asyncio.sleep(warmup)
            counts = []
            for v in viewers:
                await v.send({})
                counts.append((await v.recv())["frames"])
            cpu = await measure(server, window)
            received = 0
            for v, before in zip(viewers, counts, strict=True):
                await v.send({})
                received += (await v.recv())["frames"] - before
            result = {
                **base,
                "viewers": level,
                "window_s": window,
                "server_cpu_pct": round(cpu, 2),
                "per_viewer_cpu_pct": round((cpu - idle) / level, 3),
                "goal_per_viewer_pct": 1.0,
                "frames_received_per_viewer_per_s": round(received / level / window, 1),
                # Viewers far below the feed's frame rate mean the machine is saturated (the viewers
                # share it): the CPU figure then understates the server's real cost.
                "valid": received / level / window >= 0.9 * FPS,
            }
            lines.append(json.dumps(result))
            print(lines[-1], flush=True)
    finally:
        for v in viewers:
            await v.stop()
        await server.stop()
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("role", nargs="?", default="drive", choices=["drive", "serve", "view"])
    parser.add_argument("--count", type=int, default=PER_PROCESS)
    parser.add_argument("--levels", default="1,10,50,100")
    parser.add_argument("--window", type=float, default=8.0)
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    if args.role == "serve":
        asyncio.run(serve())
    elif args.role == "view":
        asyncio.run(view(args.count))
    else:
        levels = sorted(int(x) for x in args.levels.split(","))
        lines = asyncio.run(drive(levels, args.window, args.warmup))
        if args.out is not None:
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
