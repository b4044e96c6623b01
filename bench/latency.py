"""Added latency: camera packet read → frame decoded at a WHEP viewer, p50/p95/p99 at 1/16/64 viewers.

    .venv/bin/python bench/latency.py [--viewers 1,16,64] [--seconds 20] [--decoders 16]

Parts, all real: the camera simulator (one 360p H.264 mount, its encoder shared by every RTSP client,
as a real camera's is), a real ``videohub serve`` process (embedded Valkey, ingest, Feed hub, WHEP),
and aiortc viewers in this process.

How a frame is followed through videohub, on one clock (CLOCK_MONOTONIC is shared by every process of
the machine, so ``time.monotonic()`` values from different processes compare directly):
- read: a *tap* process opens the same camera URL over RTSP/TCP beside the service and records, for
  every packet, the moment the demuxer returned it and a fingerprint of its slice data (a BLAKE2b of
  the VCL NAL units, start codes stripped). The simulator sends both clients the same bytes at the
  same moment, so the tap's read time stands for the service's read time (the ``received`` stamp of
  ingest's ``Packet``);
- decoded: each viewer's H.264 decoder is wrapped; when aiortc hands it a reassembled frame the wrapper
  fingerprints the same VCL NAL units (passthrough never touches slice bytes; SPS/PPS added before
  keyframes are not VCL), decodes it, and records the time the decoder returned;
- latency = decoded − read for the matching fingerprint (the latest read not after the decode).
It therefore includes ingest, the Feed's fan-out, packetizing, SRTP, loopback UDP, the viewer's jitter
buffer and its decode; it excludes the camera's encoder and the RTSP hop (the same for both clients).

Only the first ``--decoders`` viewers decode (the others reassemble and fingerprint frames and drop
them, so they still pull the full stream from the server): 64 decoders of this process would measure
this process, not videohub. ``arrival_*`` fields give the same percentiles for every viewer at frame
reassembly, before decoding. Saturation is reported, not hidden: ``saturated`` is true when the
machine was > 90 % busy during the window or viewers received < 90 % of the camera's frames.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.harness.procstat import machine_ticks, process_cpu_s  # noqa: E402
from bench.harness.service_env import MANY_VIEWERS_ENV  # noqa: E402

VCL = (1, 5)


def fingerprint(data: bytes) -> str | None:
    """BLAKE2b of the access unit's VCL NAL units (start codes and trailing zero bytes stripped)."""
    digest = hashlib.blake2b(digest_size=8)
    found = False
    for unit in data.split(b"\x00\x00\x01"):
        unit = unit.rstrip(b"\x00")
        if unit and unit[0] & 0x1F in VCL:
            digest.update(unit)
            found = True
    return digest.hexdigest() if found else None


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, round(q * (len(ordered) - 1))))]


# ---- tap process: the camera's packets as a second RTSP client sees them ----------------------


def tap(url: str) -> None:
    import av

    from ingest.source import SourceOptions, open_options

    # The service's own demuxer options, so the tap's "read" is the same point in FFmpeg's RTSP demuxer
    # (and its H.264 parser) as the moment ingest stamps a packet ``received``.
    container = av.open(url, options=open_options(url, SourceOptions(transport="tcp")), timeout=10)
    stream = container.streams.video[0]
    for packet in container.demux(stream):
        read = time.monotonic()
        fp = fingerprint(bytes(packet))
        if fp is not None:
            sys.stdout.write(f"{read:.6f} {fp}\n")
            sys.stdout.flush()


# ---- driver -----------------------------------------------------------------------------------


class Records:
    """What the viewers saw: (decoding?, fingerprint, last packet at, reassembled at, decoded at)."""

    def __init__(self) -> None:
        self.frames: list[tuple[bool, str, float, float, float, bool]] = []
        self.created = 0
        # RTP timestamp → arrival of the frame's last packet (marker bit). Timestamps start at a random
        # offset per sender, so the viewers' frames do not collide.
        self.marker_at: dict[int, float] = {}
        self.marker_hits = 0


def install_timed_decoders(records: Records, decoders: int) -> None:
    import aiortc.rtcrtpreceiver as receiver_module
    from aiortc.jitterbuffer import JitterBuffer

    real_get_decoder = getattr(receiver_module, "get_decoder")  # noqa: B009 (not re-exported for mypy)
    real_add = JitterBuffer.add

    # aiortc's jitter buffer hands a frame on only when the first packet of the *next* frame arrives
    # (it ignores the marker bit): record when the frame was really complete at the viewer. The
    # receiver rewrites the frame's timestamp (its TimestampMapper) after ``add`` returns it, so the
    # arrival is attached to the frame object here, while it still carries the RTP timestamp.
    def add(self: Any, packet: Any) -> Any:
        if packet.marker:
            records.marker_at[packet.timestamp] = time.monotonic()
        result = real_add(self, packet)
        frame = result[1] if isinstance(result, tuple) else None
        if frame is not None:
            at = records.marker_at.pop(frame.timestamp, None)
            setattr(frame, "marker_at", at)  # noqa: B010 (not a JitterFrame field)
            records.marker_hits += at is not None
        return result

    setattr(JitterBuffer, "add", add)  # noqa: B010

    class TimedDecoder:
        def __init__(self, codec: Any) -> None:
            records.created += 1
            self.inner = real_get_decoder(codec) if records.created <= decoders else None

        def decode(self, encoded_frame: Any) -> list[Any]:
            arrived = time.monotonic()
            fp = fingerprint(bytes(encoded_frame.data))
            frames: list[Any] = self.inner.decode(encoded_frame) if self.inner is not None else []
            marker_at = getattr(encoded_frame, "marker_at", None)
            complete = marker_at if marker_at is not None else arrived
            if fp is not None:
                # list.append is atomic under the GIL; the decoder threads only append.
                records.frames.append(
                    (self.inner is not None, fp, complete, arrived, time.monotonic(), marker_at is not None)
                )
            return frames

    setattr(receiver_module, "get_decoder", TimedDecoder)  # noqa: B010


async def run(args: argparse.Namespace) -> list[dict[str, Any]]:
    import httpx

    from tests.fixtures.camsim import CameraSimulator
    from tests.fixtures.service import VideohubService
    from tests.webrtc.viewer import Viewer

    levels = sorted(int(v) for v in args.viewers.split(","))
    records = Records()
    install_timed_decoders(records, args.decoders)
    mount = f"lat:profile=high,width={args.width},height={args.height},fps={args.fps},gop={args.gop}"
    sim = await asyncio.to_thread(CameraSimulator, preset="none", mounts=[mount])
    service = await asyncio.to_thread(
        VideohubService,
        Path(tempfile.mkdtemp(prefix="vh-lat-")),
        env={"VIDEOHUB_SERVER__LOG_LEVEL": "warning", **MANY_VIEWERS_ENV},
    )
    url = sim.rtsp_url("lat", {"cam": "latency"})
    service_pid = service._proc.pid  # the `videohub serve` Python process itself
    taps: list[asyncio.subprocess.Process] = []
    readers: list[asyncio.Task[None]] = []
    reads: dict[str, list[float]] = {}
    control: dict[str, float] = {}

    async def read_tap(proc: asyncio.subprocess.Process, into: dict[str, Any], many: bool) -> None:
        assert proc.stdout is not None
        async for raw in proc.stdout:
            t, fp = raw.decode().split()
            if many:
                into.setdefault(fp, []).append(float(t))
            else:
                into[fp] = float(t)

    async def start_taps() -> None:
        # Two taps: the first is the reference; the second is a control that shows how closely two
        # RTSP clients of the simulator see the same packet (the error of standing in for the
        # service's read). Started once the service streams the camera, so that all three clients
        # join the simulator's one running media: a tap that connects while the mount's first
        # pipeline is still starting can be handed a media of its own (another encoder, other bytes).
        for into, many in ((reads, True), (control, False)):
            proc = await asyncio.create_subprocess_exec(
                sys.executable, __file__, "tap", url, stdout=asyncio.subprocess.PIPE, cwd=REPO
            )
            taps.append(proc)
            readers.append(asyncio.create_task(read_tap(proc, into, many)))

    viewers: list[Viewer] = []
    drains: list[asyncio.Task[None]] = []
    results: list[dict[str, Any]] = []
    client = httpx.AsyncClient(base_url=service.base_url, headers=service.auth(), timeout=30)
    try:
        await asyncio.to_thread(service.create_camera, "lat", url, mode="always_on")

        async def drain(viewer: Viewer) -> None:
            while True:
                await viewer.frame(within=3600)

        for level in levels:
            while len(viewers) < level:
                viewer = Viewer()
                offer = await viewer.offer()
                response = await client.post(
                    "/whep/lat", content=offer, headers={"Content-Type": "application/sdp"}
                )
                assert response.status_code == 201, response.text
                await viewer.accept(response.text)
                viewers.append(viewer)
                if len(viewers) <= args.decoders:
                    drains.append(asyncio.create_task(drain(viewer)))
            if not taps:
                await start_taps()
            await asyncio.sleep(max(3.0, args.gop + 1.0))  # past the GOP cache each new viewer starts from
            records.frames.clear()
            cpu0, self0, busy0 = (
                process_cpu_s(service_pid),
                resource.getrusage(resource.RUSAGE_SELF),
                machine_ticks(),
            )
            t0 = time.monotonic()
            await asyncio.sleep(args.seconds)
            window = time.monotonic() - t0
            frames = list(records.frames)
            cpu1, self1, busy1 = (
                process_cpu_s(service_pid),
                resource.getrusage(resource.RUSAGE_SELF),
                machine_ticks(),
            )
            await asyncio.sleep(0.5)  # let the tap's last lines in
            tap_skew = [
                (control[fp] - ts[-1]) * 1000
                for fp, ts in list(reads.items())
                if fp in control and t0 <= ts[-1] <= t0 + window
            ]
            decoded, delivered, decode_ms, unmatched, read_later = [], [], [], 0, 0
            for decoding, fp, complete, at, done, _ in frames:
                before = [t for t in reads.get(fp, []) if t <= complete]
                if not before:
                    unmatched += 1
                    read_later += fp in reads  # the tap saw it only after the viewer: the tap lagged
                    continue
                read = before[-1]
                delivered.append((complete - read) * 1000)
                if decoding:
                    decoded.append((done - read) * 1000)
                    decode_ms.append((done - at) * 1000)
            busy, total = busy1[0] - busy0[0], busy1[1] - busy0[1]
            busy_pct = 100.0 * busy / total if total else 0.0
            per_viewer_fps = len(frames) / level / window
            saturated = busy_pct > 90.0 or per_viewer_fps < 0.9 * args.fps
            bench_cpu = (self1.ru_utime + self1.ru_stime - self0.ru_utime - self0.ru_stime) / window
            line: dict[str, Any] = {
                "bench": "latency",
                "viewers": level,
                "decoding_viewers": min(level, args.decoders),
                "camera": {"width": args.width, "height": args.height, "fps": args.fps, "gop_s": args.gop},
                "window_s": round(window, 1),
                "matched": len(delivered),
                # Frames whose last packet's arrival was recorded (else the decoder hand-over time
                # stands in, one frame interval later); should be all of them.
                "marker_time_found": sum(1 for f in frames if f[5]),
                "unmatched": unmatched,
                "unmatched_seen_later_by_tap": read_later,
                "frames_per_viewer_per_s": round(per_viewer_fps, 2),
                "service_cpu_pct": round(100.0 * (cpu1 - cpu0) / window, 1),
                "bench_process_cpu_pct": round(100.0 * bench_cpu, 1),
                "machine_busy_pct": round(busy_pct, 1),
                "saturated": saturated,
                # Most frames unmatched: the tap did not see the service's stream (a separate media
                # in the simulator); the level's latency is then missing rather than wrong.
                "reference_mismatch": unmatched > len(frames) / 2,
            }
            if decoded:
                line |= {
                    "p50_ms": round(statistics.median(decoded), 1),
                    "p95_ms": round(percentile(decoded, 0.95), 1),
                    "p99_ms": round(percentile(decoded, 0.99), 1),
                    "max_ms": round(max(decoded), 1),
                    "cdf_ms": [round(percentile(decoded, q / 100), 1) for q in range(1, 100)],
                }
            if delivered:
                line |= {
                    "delivered_p50_ms": round(statistics.median(delivered), 1),
                    "delivered_p95_ms": round(percentile(delivered, 0.95), 1),
                    "delivered_p99_ms": round(percentile(delivered, 0.99), 1),
                    "delivered_cdf_ms": [round(percentile(delivered, q / 100), 1) for q in range(1, 100)],
                }
            if decode_ms:
                line["decode_p50_ms"] = round(statistics.median(decode_ms), 2)
            line["frame_interval_ms"] = round(1000 / args.fps, 1)
            if tap_skew:
                line["tap_control_p50_ms"] = round(statistics.median(tap_skew), 2)
                line["tap_control_p99_abs_ms"] = round(percentile([abs(v) for v in tap_skew], 0.99), 2)
            results.append(line)
            print(json.dumps(line), flush=True)
    finally:
        # The service first: once it stops sending, nothing piles up in the players while they close
        # (a decoding player's frame queue is unbounded; 16 of them fill ~80 MB/s when not drained).
        await client.aclose()
        await asyncio.to_thread(service.close)
        await asyncio.gather(*(asyncio.wait_for(v.close(), 10) for v in viewers), return_exceptions=True)
        for task in drains:
            task.cancel()
        await asyncio.gather(*drains, return_exceptions=True)
        for task in readers:
            task.cancel()
        for proc in taps:
            proc.kill()
            await proc.wait()
        await asyncio.to_thread(sim.close)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("role", nargs="?", default="drive", choices=["drive", "tap"])
    parser.add_argument("url", nargs="?")
    parser.add_argument("--viewers", default="1,16,64")
    parser.add_argument(
        "--decoders", type=int, default=16, help="viewers that decode (the rest only reassemble)"
    )
    parser.add_argument("--seconds", type=float, default=20.0, help="measurement window per level")
    parser.add_argument("--fps", type=int, default=15)
    parser.add_argument("--gop", type=float, default=2.0)
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--height", type=int, default=360)
    args = parser.parse_args()
    if args.role == "tap":
        tap(args.url)
    else:
        asyncio.run(run(args))


if __name__ == "__main__":
    main()
