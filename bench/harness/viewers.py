"""The benchmarks' WebRTC viewers: real aiortc peers in niced child processes, driven over stdin/stdout.

    python bench/harness/viewers.py --count 25 [--decode] [--answer] [--address A]

One process holds up to ``--count`` peers (ICE, DTLS-SRTP, RTCP with the server). ``--decode``: aiortc's
full receiver (SRTP, jitter buffer, H.264 decoder), frames are decoded pictures — the proof that the
stream plays. Otherwise the peers count the stream from the clear RTP headers of each SRTP packet
(``count_rtp_from_headers``) and send an RTCP receiver report about once a second as a player does.
Full receivers for every viewer saturated the 2 cores at 50 and 100 viewers (``bench/fanout_cpu.py``).

The protocol on stdin/stdout is one JSON object a line:
- offer mode (WHEP, the default): the process prints ``{"id", "offer"}`` for each peer and reads
  ``{"id", "answer"}`` back;
- ``--answer`` (Janus's streaming plugin, where the *server* offers): the process reads
  ``{"id", "offer"}`` and prints ``{"id", "answer"}``;
- then each empty line ``{}`` it reads is answered with ``{"frames": [...], "bytes": [...]}``, one
  count per peer; end of stdin closes the peers and ends the process.

``--address`` keeps every ICE host candidate on that one address (aioice otherwise offers each
interface address but 127.0.0.1).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench.harness.procstat import process_cpu_s  # noqa: E402

PER_PROCESS = 25


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


def only_address(address: str) -> None:
    """Make this process's ICE agents offer host candidates on ``address`` alone."""
    import aioice.ice

    setattr(aioice.ice, "get_host_addresses", lambda use_ipv4, use_ipv6: [address])  # noqa: B010


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


async def view(count: int, decode: bool, *, answer: bool = False, address: str | None = None) -> None:
    """``count`` real aiortc peers (ICE, DTLS-SRTP, RTCP with the server); see the module docstring.

    ``decode``: aiortc's full receiver; frames are decoded pictures. Otherwise headers are counted
    (``count_rtp_from_headers``); frames are marker bits.
    """
    from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
    from aiortc.mediastreams import MediaStreamTrack

    if address:
        only_address(address)
    counts = {} if decode else count_rtp_from_headers()
    loop = asyncio.get_running_loop()
    pcs: dict[int, Any] = {}
    decoded = [0] * count
    tasks: list[asyncio.Task[None]] = []
    header_counts: list[HeaderCount] = []

    async def readline() -> dict[str, Any]:
        reply: dict[str, Any] = json.loads(await loop.run_in_executor(None, sys.stdin.readline))
        return reply

    async def consume(i: int, track: MediaStreamTrack) -> None:
        while True:
            await track.recv()
            decoded[i] += 1

    def new_pc(i: int) -> Any:
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        if decode:
            pc.on("track", lambda track, i=i: tasks.append(asyncio.create_task(consume(i, track))))
        pcs[i] = pc
        return pc

    def count_headers(pc: Any) -> None:
        dtls = pc.getTransceivers()[0].receiver.transport
        counts[id(dtls.transport._connection)] = c = HeaderCount()
        header_counts.append(c)
        tasks.append(asyncio.create_task(send_receiver_reports(dtls, c)))

    if answer:
        for _ in range(count):
            offer = await readline()
            pc = new_pc(offer["id"])
            await pc.setRemoteDescription(RTCSessionDescription(sdp=offer["offer"], type="offer"))
            if not decode:
                count_headers(pc)  # before ICE starts, so no media datagram escapes the count
            await pc.setLocalDescription(await pc.createAnswer())
            print(json.dumps({"id": offer["id"], "answer": pc.localDescription.sdp}), flush=True)
    else:
        for i in range(count):
            pc = new_pc(i)
            pc.addTransceiver("video", direction="recvonly")
            await pc.setLocalDescription(await pc.createOffer())
            print(json.dumps({"id": i, "offer": pc.localDescription.sdp}), flush=True)
        for _ in range(count):
            reply = await readline()
            pc = pcs[reply["id"]]
            await pc.setRemoteDescription(RTCSessionDescription(sdp=reply["answer"], type="answer"))
            if not decode:
                count_headers(pc)
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
    for pc in pcs.values():
        await pc.close()


class Player:
    """One decoding aiortc peer in the calling process, for time to first frame.

    WHEP: ``offer()``, hand it to the server, ``accept(answer)``. Janus: ``answer(offer)``, hand it to
    the server. Then ``first_frame()`` waits for the first decoded picture. Call ``only_address`` first
    where the server needs it (it patches the process's aioice).
    """

    def __init__(self) -> None:
        from aiortc import RTCConfiguration, RTCPeerConnection
        from aiortc.mediastreams import MediaStreamTrack

        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self._track: asyncio.Future[MediaStreamTrack] = asyncio.get_running_loop().create_future()
        self.connected_at: float | None = None  # time.monotonic() when ICE and DTLS were done

        @self.pc.on("track")
        def _on_track(track: MediaStreamTrack) -> None:
            if not self._track.done():
                self._track.set_result(track)

        @self.pc.on("connectionstatechange")
        def _on_state() -> None:
            if self.pc.connectionState == "connected" and self.connected_at is None:
                self.connected_at = time.monotonic()

    async def offer(self) -> str:
        self.pc.addTransceiver("video", direction="recvonly")
        await self.pc.setLocalDescription(await self.pc.createOffer())
        return str(self.pc.localDescription.sdp)

    async def accept(self, answer: str) -> None:
        from aiortc import RTCSessionDescription

        await self.pc.setRemoteDescription(RTCSessionDescription(sdp=answer, type="answer"))

    async def answer(self, offer: str) -> str:
        from aiortc import RTCSessionDescription

        await self.pc.setRemoteDescription(RTCSessionDescription(sdp=offer, type="offer"))
        await self.pc.setLocalDescription(await self.pc.createAnswer())
        return str(self.pc.localDescription.sdp)

    async def first_frame(self, within: float = 30.0) -> None:
        """Wait for the first decoded picture (TimeoutError after ``within`` s)."""
        async with asyncio.timeout(within):
            track = await self._track
            await track.recv()

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await self.pc.close()


# ---- the driver's side ------------------------------------------------------------------------


def children(pid: int) -> list[int]:
    """Direct child processes (the service's embedded Valkey)."""
    out = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        text = (task / "children").read_text().split()
        out += [int(x) for x in text]
    return out


@dataclass
class Proc:
    """One child process spoken to in JSON lines over its stdin/stdout."""

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
        """Close its stdin (the peers close, the process ends); kill it after 15 s. Safe twice."""
        if self.proc.returncode is None:
            assert self.proc.stdin is not None
            self.proc.stdin.close()
            try:
                await asyncio.wait_for(self.proc.wait(), 15)
            except TimeoutError:
                self.proc.kill()
                await self.proc.wait()


async def spawn(*args: str, nice: bool = False, script: Path | None = None) -> Proc:
    """Start ``script`` (default: this module, the viewer process) with ``args``, niced with ``nice``."""
    cmd = [sys.executable, str(script or Path(__file__)), *args]
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


async def spawn_viewers(n: int, decode: bool, *, answer: bool = False, address: str | None = None) -> Proc:
    """One niced viewer process of ``n`` peers (see the module docstring for its protocol)."""
    args = ["--count", str(n), *(["--decode"] if decode else []), *(["--answer"] if answer else [])]
    if address:
        args += ["--address", address]
    return await spawn(*args, nice=True)


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
        return sum(process_cpu_s(v.proc.pid) for v in self.procs)

    async def stop(self) -> None:
        procs, self.procs = self.procs, []
        await asyncio.gather(*(v.stop() for v in procs))


async def all_flowing(viewers: Viewers, within: float = 90.0) -> bool:
    """Wait until every viewer has received frames (ICE and DTLS done), before the warm-up."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if all(f > 0 for frames, _ in await viewers.counts() for f in frames):
            return True
        await asyncio.sleep(0.5)
    return False


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--count", type=int, default=PER_PROCESS)
    parser.add_argument("--decode", action="store_true", help="decode (aiortc's full receiver)")
    parser.add_argument("--answer", action="store_true", help="the server offers, the viewers answer (Janus)")
    parser.add_argument("--address", default=None, help="the one address for ICE host candidates")
    args = parser.parse_args()
    asyncio.run(view(args.count, args.decode, answer=args.answer, address=args.address))


if __name__ == "__main__":
    main()
