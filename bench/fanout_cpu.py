"""Server CPU per WHEP viewer track at 1, 10, 50 and 100 viewers of one 720p ~2 Mbit/s feed.

    .venv/bin/python bench/fanout_cpu.py [--levels 1,10,50,100] [--window 8] [--sender passthrough|aiortc]

Three kinds of process, so that only the server's work is measured:
- the server: the real ``SessionManager`` (videohub's ``PassthroughSender``: payloads packetized once
  per access unit and shared, per viewer only RTP header, SRTP and UDP; ``--sender aiortc`` runs
  aiortc's own ``RTCRtpSender`` loop instead, for comparison) fed by a replay of a pre-encoded clip
  (encoding happens once, before measuring, so the feed costs ~nothing);
- viewer processes (niced), all real aiortc peers negotiating ICE, DTLS-SRTP and RTCP with the server
  through the same offer/answer as WHEP. The first viewer decodes every frame with aiortc's full
  receiver (SRTP, jitter buffer, H.264 decoder): the proof that the stream really plays. The others
  (up to 25 per process) count the stream from the RTP headers, which SRTP leaves in clear (marker
  bit = end of a frame, sizes, sequence numbers), without unprotecting, depacketizing or decoding,
  and send an RTCP receiver report about once a second as a player does. Until 2026-11-26 every
  viewer ran aiortc's receiver (without decoding); at 50 and 100 viewers those processes saturated
  the 2 cores and starved the server, so those levels were invalid;
- this driver: relays offers and answers, reads the server's and viewers' CPU time from /proc.

Prints one JSON object per level: the server process's CPU (% of one core, from /proc utime+stime),
its increase per viewer over the idle server (feed running, no viewer) and per viewer added since
the previous level (the marginal cost, without the feed-wide share the first viewer carries), the
frames each viewer received per second (mean, minimum, and the decoding viewer's decoded pictures),
and the viewers' own CPU. ``valid`` is false when any viewer got fewer than 90 % of the feed's
frames (the machine or the server did not keep up, so the CPU figure would understate the real cost).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
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
PER_PROCESS = 25
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


async def serve(sender: str) -> None:
    from videohub.models import Camera, Streams, StreamSpec, User
    from videohub.settings.webrtc import WebRTCSettings
    from videohub.webrtc.manager import SessionManager
    from videohub.webrtc.sender import PassthroughSender

    if sender == "aiortc":  # the comparison: aiortc's RTCRtpSender loop, packetizing per viewer
        setattr(PassthroughSender, "supported", staticmethod(lambda _sender: False))  # noqa: B010
        logging.getLogger("videohub.webrtc.manager").setLevel(logging.ERROR)

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


# ---- viewer processes -------------------------------------------------------------------------


@dataclass
class HeaderCount:
    """What a counting viewer learns from the clear RTP header of each SRTP packet it receives."""

    frames: int = 0  # packets with the marker bit: the last packet of each access unit
    packets: int = 0
    octets: int = 0
    ssrc: int | None = None
    cycles: int = 0
    max_seq: int | None = None

    def add(self, data: bytes) -> None:
        self.packets += 1
        self.octets += len(data)
        if data[1] & 0x80:
            self.frames += 1
        seq = int.from_bytes(data[2:4], "big")
        if self.max_seq is None:
            self.ssrc = int.from_bytes(data[8:12], "big")
            self.max_seq = seq
        elif 0 < (seq - self.max_seq) & 0xFFFF < 0x8000:
            if seq < self.max_seq:
                self.cycles += 1 << 16
            self.max_seq = seq

    @property
    def highest(self) -> int:
        return self.cycles + (self.max_seq or 0)


def count_rtp_from_headers() -> dict[int, HeaderCount]:
    """Make this process's aiortc peers count media from RTP headers instead of receiving it.

    SRTP encrypts the payload only, so marker bit, sequence number, SSRC and size are readable without
    the key. Media datagrams are counted where aioice receives them and go no further (no SRTP
    unprotect, jitter buffer, depacketizing or decoding); STUN, DTLS and RTCP take aiortc's normal
    path, so ICE consent, DTLS-SRTP keys and the server's sender reports stay real.
    """
    from aioice.ice import StunProtocol

    counts: dict[int, HeaderCount] = {}
    original = StunProtocol.datagram_received

    def datagram_received(self: Any, data: bytes, addr: Any) -> None:
        # RTP per RFC 5761/7983: first byte 128..191, second byte not an RTCP packet type (192..223).
        if len(data) > 12 and 127 < data[0] < 192 and not 191 < data[1] < 224:
            count = counts.get(id(self.receiver))
            if count is not None:
                count.add(data)
                return
        original(self, data, addr)

    setattr(StunProtocol, "datagram_received", datagram_received)  # noqa: B010
    return counts


async def send_receiver_reports(dtls: Any, count: HeaderCount) -> None:
    """About once a second, what an aiortc or browser receiver sends: an RTCP receiver report.

    The server judges liveness from the player's RTCP (``WhepSession.check_alive``), and a viewer that
    never reported would be ended as vanished.
    """
    import random

    from aiortc.rtp import RtcpReceiverInfo, RtcpRrPacket

    own = random.getrandbits(32)
    while True:
        await asyncio.sleep(0.5 + random.random())
        if count.ssrc is None:
            continue
        info = RtcpReceiverInfo(
            ssrc=count.ssrc,
            fraction_lost=0,
            packets_lost=0,
            highest_sequence=count.highest,
            jitter=0,
            lsr=0,
            dlsr=0,
        )
        try:
            await dtls._send_rtp(bytes(RtcpRrPacket(ssrc=own, reports=[info])))
        except ConnectionError:
            return


async def view(count: int, decode: bool) -> None:
    """``count`` real aiortc peers (ICE, DTLS-SRTP, RTCP with the server over WHEP-style offer/answer).

    ``--decode``: aiortc's full receiver (SRTP, jitter buffer, H.264 decoding); frames are decoded
    pictures. Otherwise headers are counted (``count_rtp_from_headers``); frames are marker bits.
    """
    from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
    from aiortc.mediastreams import MediaStreamTrack

    counts = {} if decode else count_rtp_from_headers()
    loop = asyncio.get_running_loop()
    pcs = []
    decoded = [0] * count
    tasks: list[asyncio.Task[None]] = []

    async def consume(i: int, track: MediaStreamTrack) -> None:
        while True:
            await track.recv()
            decoded[i] += 1

    for i in range(count):
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        pc.addTransceiver("video", direction="recvonly")
        if decode:
            pc.on("track", lambda track, i=i: tasks.append(asyncio.create_task(consume(i, track))))
        await pc.setLocalDescription(await pc.createOffer())
        pcs.append(pc)
        print(json.dumps({"id": i, "offer": pc.localDescription.sdp}), flush=True)
    header_counts: list[HeaderCount] = []
    for _ in range(count):
        reply = json.loads(await loop.run_in_executor(None, sys.stdin.readline))
        pc = pcs[reply["id"]]
        await pc.setRemoteDescription(RTCSessionDescription(sdp=reply["answer"], type="answer"))
        if not decode:
            dtls = pc.getTransceivers()[0].receiver.transport
            counts[id(dtls.transport._connection)] = c = HeaderCount()
            header_counts.append(c)
            tasks.append(asyncio.create_task(send_receiver_reports(dtls, c)))
    while True:
        line = await loop.run_in_executor(None, sys.stdin.readline)
        if not line:
            break
        if decode:
            print(json.dumps({"frames": decoded, "bytes": [0] * count}), flush=True)
        else:
            frames = [c.frames for c in header_counts]
            print(json.dumps({"frames": frames, "bytes": [c.octets for c in header_counts]}), flush=True)
    for task in tasks:
        task.cancel()
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


@dataclass
class Viewers:
    """The viewer processes: the first holds the one decoding viewer, the others counting viewers."""

    procs: list[Proc]

    async def counts(self) -> list[tuple[list[int], list[int]]]:
        out = []
        for v in self.procs:
            await v.send({})
            reply = await v.recv()
            out.append((reply["frames"], reply["bytes"]))
        return out

    def cpu_seconds(self) -> float:
        return sum(cpu_seconds(v.proc.pid) for v in self.procs)


async def add_viewers(server: Proc, n: int, decode: bool) -> Proc:
    args = ["view", "--count", str(n), *(["--decode"] if decode else [])]
    viewer = await spawn(*args, nice=True)
    offers = [await viewer.recv() for _ in range(n)]
    for offer in offers:
        await server.send({"id": offer["id"], "offer": offer["offer"]})
        await viewer.send(await server.recv())
    return viewer


async def all_flowing(viewers: Viewers, within: float = 90.0) -> bool:
    """Wait until every viewer has received frames (ICE and DTLS done), before the warm-up."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if all(f > 0 for frames, _ in await viewers.counts() for f in frames):
            return True
        await asyncio.sleep(0.5)
    return False


async def measure(server: Proc, window: float) -> float:
    before, t0 = cpu_seconds(server.proc.pid), time.monotonic()
    await asyncio.sleep(window)
    return 100.0 * (cpu_seconds(server.proc.pid) - before) / (time.monotonic() - t0)


async def drive(levels: list[int], window: float, warmup: float, sender: str) -> list[str]:
    server = await spawn("serve", "--sender", sender)
    viewers = Viewers([])
    lines: list[str] = []
    try:
        ready = await server.recv(timeout=300)
        idle = await measure(server, window)
        base = {"bench": "fanout_cpu", "width": WIDTH, "height": HEIGHT, "fps": FPS, "sender": sender}
        base["feed_bitrate"] = ready["bitrate"]
        first = {**base, "viewers": 0, "server_cpu_pct": round(idle, 2)}
        lines.append(json.dumps(first))
        print(lines[-1], flush=True)
        total = prev_level = 0
        prev_cpu = idle
        for level in levels:
            while total < level:
                decode = total == 0  # the first viewer decodes: proof that the stream really plays
                n = 1 if decode else min(PER_PROCESS, level - total)
                viewers.procs.append(await add_viewers(server, n, decode))
                total += n
            flowing = await all_flowing(viewers)
            await asyncio.sleep(warmup)
            before = await viewers.counts()
            viewers_cpu = viewers.cpu_seconds()
            cpu = await measure(server, window)
            viewers_cpu = viewers.cpu_seconds() - viewers_cpu
            after = await viewers.counts()
            fps: list[float] = []
            kbits: list[float] = []
            for (f0, b0), (f1, b1) in zip(before, after, strict=True):
                fps += [(b - a) / window for a, b in zip(f0, f1, strict=True)]
                kbits += [(b - a) * 8 / window / 1000 for a, b in zip(b0, b1, strict=True)]
            decoded_fps, counted = fps[0], fps[1:]
            result = {
                **base,
                "viewers": level,
                "window_s": window,
                "server_cpu_pct": round(cpu, 2),
                "per_viewer_cpu_pct": round((cpu - idle) / level, 3),
                # The slope from the previous level: what each added viewer cost, without the
                # feed-wide work (packetizing each access unit once) that the first viewer carries.
                "marginal_cpu_pct_per_added_viewer": round((cpu - prev_cpu) / (level - prev_level), 3),
                "goal_per_viewer_pct": 1.0,
                "frames_received_per_viewer_per_s": round(sum(fps) / level, 1),
                "min_viewer_fps": round(min(fps), 1),
                "decoding_viewer_fps": round(decoded_fps, 1),
                "counting_viewers": len(counted),
                "kbit_s_per_counting_viewer": round(sum(kbits[1:]) / len(counted)) if counted else None,
                "viewer_processes": len(viewers.procs),
                "viewers_cpu_pct": round(100.0 * viewers_cpu / window, 1),
                # Any viewer (or the decoding one) short of the feed's frame rate means the machine or the
                # server could not keep up: the CPU figure would then understate the server's real cost.
                "valid": flowing and min(fps) >= 0.9 * FPS,
            }
            lines.append(json.dumps(result))
            print(lines[-1], flush=True)
            prev_level, prev_cpu = level, cpu
    finally:
        for v in viewers.procs:
            await v.stop()
        await server.stop()
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("role", nargs="?", default="drive", choices=["drive", "serve", "view"])
    parser.add_argument("--count", type=int, default=PER_PROCESS)
    parser.add_argument("--decode", action="store_true", help="view: decode (aiortc's full receiver)")
    parser.add_argument("--levels", default="1,10,50,100")
    parser.add_argument("--window", type=float, default=8.0)
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument(
        "--sender",
        choices=["passthrough", "aiortc"],
        default="passthrough",
        help="the server's RTP loop: videohub's PassthroughSender, or aiortc's own (for comparison)",
    )
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    if args.role == "serve":
        asyncio.run(serve(args.sender))
    elif args.role == "view":
        asyncio.run(view(args.count, args.decode))
    else:
        levels = sorted(int(x) for x in args.levels.split(","))
        lines = asyncio.run(drive(levels, args.window, args.warmup, args.sender))
        if args.out is not None:
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
