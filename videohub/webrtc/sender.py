"""The RTP send loop of one passthrough viewer, replacing aiortc's ``RTCRtpSender._run_rtp``.

Profiling 10 viewers of a 720p ~2 Mbit/s feed (bench/fanout_cpu.py) showed where aiortc's generic
loop spends the server's time per RTP packet and per viewer: the datetime-based NTP clock for
abs-send-time (~8 %), H.264 packetizing (~9 %), an ``RtpPacket`` object plus its serialization, and
four awaited calls (``RTCDtlsTransport._send_rtp`` → ``RTCIceTransport`` → aioice ``Connection.send``
→ ``StunProtocol.send_data``) around the only two steps that must be done per viewer: SRTP protect
and ``sendto``. This loop keeps those two, builds the 12-byte header and the header extensions with
``struct``, takes the payloads from the shared :class:`Packetizer`, and awaits once per access unit.
After the GOP burst it does not even await: the camera's ingest thread sends each access unit itself
(``PassthroughSender`` below), as the loop wake-up per frame was then the largest part of a viewer.

What browsers rely on is kept: the negotiated header extensions (mid, abs-send-time: aiortc
negotiates no others), the RTX payload type and SSRC, NACK retransmission (from this loop's own
history, which shares the payload bytes with every other viewer), and aiortc's RTCP task, which
still sends sender reports and SDES from the counters this loop updates.
"""

from __future__ import annotations

import asyncio
import errno
import importlib
import logging
import secrets
import socket
import struct
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from aiortc import RTCRtpSender
from aiortc.mediastreams import MediaStreamError
from aiortc.rtcrtpparameters import RTCRtpCodecParameters
from aiortc.rtp import HeaderExtensions

from ingest.packet import Packet
from videohub.webrtc.packetizer import Packetizer
from videohub.webrtc.track import FeedTrack

log = logging.getLogger(__name__)

HISTORY_FRAMES = 64
"""Access units kept for NACK repair (2.5 s at 25 fps; the payloads are shared with every viewer)."""
_NTP_EPOCH = 2_208_988_800
_HEADER = struct.Struct("!BBHLL")
_EXT_HEADER = struct.Struct("!HH")
_SEQ = struct.Struct("!H")
_CLOSED = (errno.EBADF, errno.ENOTSOCK)

_srtp_ffi: Any = None
_srtp_lib: Any = None
try:  # pylibsrtp's cffi binding, for LockedSrtp's direct calls (optional: its method is the fallback)
    _binding = importlib.import_module("pylibsrtp._binding")
    _srtp_ffi, _srtp_lib = _binding.ffi, _binding.lib
except (ImportError, AttributeError):  # pragma: no cover - another pylibsrtp
    pass
_SRTP_BUFFER = 1500
_SRTP_TRAILER = 16 + 128  # pylibsrtp's SRTP_MAX_TRAILER_LEN: room libsrtp may append

# aiortc 1.16 keeps these on RTCRtpSender / RTCDtlsTransport under name-mangled attributes; the RTCP
# task (sender reports), getStats() and stop() read them. ``supported`` checks they all exist.
_S = "_RTCRtpSender__"
_SENDER_ATTRS = (
    "mid",
    "rtp_header_extensions_map",
    "rtx_payload_type",
    "rtp_started",
    "rtp_exited",
    "ntp_timestamp",
    "rtp_timestamp",
    "octet_count",
    "packet_count",
)
_D = "_RTCDtlsTransport__"
# Written once per access unit: the names are built once, not per frame.
_NTP_TIMESTAMP, _RTP_TIMESTAMP = _S + "ntp_timestamp", _S + "rtp_timestamp"
_OCTET_COUNT, _PACKET_COUNT = _S + "octet_count", _S + "packet_count"
_TX_PACKETS, _TX_BYTES = _D + "tx_packets", _D + "tx_bytes"


def _ntp_now() -> int:
    """64-bit NTP time (what aiortc's ``clock.current_ntp_time`` gives, without building datetimes)."""
    return int((time.time() + _NTP_EPOCH) * 4294967296.0)


class LockedSrtp:
    """The DTLS transport's outbound SRTP session, usable from two threads.

    Once a sender is direct, the ingest thread protects RTP while the loop protects RTCP (aiortc's
    sender reports) and RTX repairs with the same libsrtp session; pylibsrtp releases the GIL in
    libsrtp and copies through one buffer per session, so concurrent calls would corrupt packets.

    ``protect_many`` (a frame's ~10 packets, per viewer) calls libsrtp itself with buffers allocated
    once; pylibsrtp's method allocates a length cell per call and goes through two more Python frames.
    Where pylibsrtp's internals differ, and for any error, it goes through pylibsrtp's method.
    """

    def __init__(self, session: Any) -> None:
        self._session = session
        self._lock = threading.Lock()
        srtp: Any = getattr(session, "_srtp", None)
        self._fast = _srtp_lib is not None and srtp is not None
        if self._fast:
            self._srtp = srtp[0]
            self._cdata = _srtp_ffi.new("char[]", _SRTP_BUFFER)
            self._buffer = _srtp_ffi.buffer(self._cdata)
            self._length = _srtp_ffi.new("int *")

    def protect(self, packet: bytes) -> bytes:
        return self.protect_many([packet])[0]

    def protect_many(self, packets: list[bytes]) -> list[bytes]:
        """SRTP-protect each of one access unit's packets, under one lock acquisition."""
        session = self._session
        with self._lock:
            if not self._fast:
                return [session.protect(packet) for packet in packets]
            out: list[bytes] = []
            append, buffer, length, cdata, srtp = (
                out.append,
                self._buffer,
                self._length,
                self._cdata,
                self._srtp,
            )
            protect, limit = _srtp_lib.srtp_protect, _SRTP_BUFFER - _SRTP_TRAILER
            for packet in packets:
                size = len(packet)
                if size <= limit:
                    buffer[0:size] = packet
                    length[0] = size
                    if protect(srtp, cdata, length) == 0:
                        append(buffer[0 : length[0]])
                        continue
                append(session.protect(packet))  # raises pylibsrtp.Error with its reason
            return out

    def protect_rtcp(self, packet: bytes) -> bytes:
        with self._lock:
            data: bytes = self._session.protect_rtcp(packet)
            return data


class PassthroughSender:
    """Sends one FeedTrack to one player: owns the RTP sequence numbers, timestamps and NACK history.

    Installed on the transceiver's ``RTCRtpSender`` before negotiation (``install``); aiortc then
    starts this loop instead of its own when the DTLS transport connects, and stops it the same way.

    The loop sends the first keyframe and the GOP burst. Then, when ``direct`` is allowed and the
    selected ICE pair is a plain UDP socket, it hands the track to the Feed (``FeedTrack.go_direct``)
    and the camera's ingest thread calls ``_deliver`` for every later access unit: header, SRTP and a
    non-blocking ``sendto`` right where the packet was read, without waking the event loop (one
    wake-up per frame was most of a viewer's cost). A datagram the kernel cannot take (its buffer is
    full) is dropped and counted, never queued; the player's NACK brings it back by RTX.
    """

    def __init__(
        self, sender: RTCRtpSender, track: FeedTrack, packetizer: Packetizer, *, direct: bool = True
    ) -> None:
        self._sender = sender
        self._track = track
        self._packetizer = packetizer
        self._allow_direct = direct
        # (first sequence number, RTP timestamp, header extensions, payloads) of each recent unit.
        self._history: deque[tuple[int, int, bytes, tuple[bytes, ...]]] = deque(maxlen=HISTORY_FRAMES)
        self._rtx_seq = secrets.randbits(15)  # as aiortc: the lower half, so SRTP's ROC never wraps early
        self._seq = secrets.randbits(15)
        self._origin = secrets.randbits(32)
        self._pt = 0
        self._ssrc = 0
        self._template: tuple[bytes, bytes] | None = None
        self._send: Callable[[bytes, Any], Any] | None = None
        self._addr: Any = None
        self._dtls: Any = None
        self._dtls_connected: Any = None
        self._protect: Callable[[bytes], bytes] | None = None
        self._protect_many: Callable[[list[bytes]], list[bytes]] | None = None
        self._raw_socket = False
        self._stopped = False
        self._octets = 0
        self.packets_sent = 0
        self.packets_dropped = 0
        self.retransmissions = 0
        self.direct = False
        """True once the ingest thread sends (after the GOP burst)."""

    @staticmethod
    def supported(sender: RTCRtpSender) -> bool:
        """Whether this aiortc has the sender internals the loop relies on (checked per session)."""
        return all(hasattr(sender, _S + name) for name in _SENDER_ATTRS) and hasattr(sender, "_run_rtp")

    def install(self) -> None:
        setattr(self._sender, "_run_rtp", self._run)  # noqa: B010
        setattr(self._sender, "_retransmit", self._retransmit)  # noqa: B010

    # -- sending ------------------------------------------------------------------------------

    def _extensions(self, ntp: int) -> bytes:
        """The header-extension block (profile, length, values) as negotiated, for this instant."""
        hmap = getattr(self._sender, _S + "rtp_header_extensions_map")
        ext = HeaderExtensions()
        ext.mid = getattr(self._sender, _S + "mid")
        ext.abs_send_time = (ntp >> 14) & 0x00FFFFFF
        profile, value = hmap.set(ext)
        if not value:
            return b""
        return _EXT_HEADER.pack(profile, len(value) >> 2) + bytes(value)

    def _extension_template(self) -> tuple[bytes, bytes] | None:
        """The block split around abs-send-time's 3 bytes, the only part that changes per frame.

        Found by building the block for two send times: building it through aiortc for every frame
        (an object, a map lookup per extension) showed in the one-viewer profile. None when the
        bytes do not differ in exactly one 3-byte run (then ``_extensions`` runs per frame).
        """
        low, high = self._extensions(0), self._extensions(0xFFFFFF << 14)
        if len(low) != len(high):
            return None
        diff = [i for i, (a, b) in enumerate(zip(low, high, strict=True)) if a != b]
        if len(diff) != 3 or diff[2] - diff[0] != 2:
            return None
        return low[: diff[0]], low[diff[0] + 3 :]

    def _connect(self) -> None:
        """Find the selected ICE pair's socket and the SRTP session (once: aiortc does no ICE restart).

        A host or server-reflexive pair is a plain non-blocking UDP socket, which the ingest thread
        may use; a TURN relay is reached through aioice's own transport, which only the loop may use
        (that session stays on the loop).
        """
        dtls = self._sender.transport
        if dtls.state != "connected":
            raise ConnectionError("DTLS transport is not connected")
        pair = dtls.transport._connection._nominated.get(1)
        if pair is None:
            raise ConnectionError("no selected ICE candidate pair")
        transport = pair.protocol.transport
        self._addr = pair.remote_addr
        sock = getattr(transport, "_sock", None)  # asyncio's UDP transport keeps its socket here
        if isinstance(sock, socket.socket) and sock.type == socket.SOCK_DGRAM and not sock.getblocking():
            self._raw_socket = True
            self._send = sock.sendto
        else:
            self._send = transport.sendto
        srtp: Any = dtls._tx_srtp
        if not isinstance(srtp, LockedSrtp):
            srtp = LockedSrtp(srtp)
            setattr(dtls, "_tx_srtp", srtp)  # noqa: B010  (aiortc's RTCP path then locks too)
        self._protect, self._protect_many = srtp.protect, srtp.protect_many
        # The ``state`` property formats an enum on every read (seen per frame in the profile).
        self._dtls, self._dtls_connected = dtls, getattr(dtls, "_state", None)

    def _connected(self) -> bool:
        connected = self._dtls_connected
        if connected is not None:
            return getattr(self._dtls, "_state", None) is connected
        return bool(self._sender.transport.state == "connected")

    def _send_unit(self, packet: Packet, rtp_ts: int) -> bool:
        """Send one access unit (payloads shared by every viewer); False when a datagram was dropped.

        Raises ConnectionError when the socket has been closed (the session is ending). Written for
        few interpreter steps per packet: on this path they are most of a viewer's CPU.
        """
        payloads = self._packetizer.payloads(packet)
        if not payloads:
            return True
        send, protect_many, addr = self._send, self._protect_many, self._addr
        assert send is not None and protect_many is not None  # _connect() ran
        ntp = _ntp_now()
        template = self._template
        if template is not None:
            ext = template[0] + ((ntp >> 14) & 0x00FFFFFF).to_bytes(3, "big") + template[1]
        else:
            ext = self._extensions(ntp)
        first = 0x90 if ext else 0x80
        timestamp = (self._origin + rtp_ts) & 0xFFFFFFFF
        pt, ssrc, seq, pack = self._pt, self._ssrc, self._seq, _HEADER.pack
        count = len(payloads)
        last = count - 1  # the last packet of the unit carries the marker bit
        plain = [
            pack(first, pt, (seq + i) & 0xFFFF, timestamp, ssrc) + ext + payloads[i] for i in range(last)
        ]
        plain.append(pack(first, 0x80 | pt, (seq + last) & 0xFFFF, timestamp, ssrc) + ext + payloads[last])
        self._history.append((seq, timestamp, ext, payloads))
        self._seq = (seq + count) & 0xFFFF
        protected = protect_many(plain)
        lost = sent = 0
        sent_bytes = sum(map(len, protected))
        while sent + lost < count:
            try:
                for data in protected[sent + lost :]:
                    send(data, addr)
                    sent += 1
            except OSError as exc:
                if exc.errno in _CLOSED:
                    raise ConnectionError("the ICE socket was closed") from exc
                # EAGAIN/ENOBUFS: the socket's buffer is full; dropped (the player NACKs), not queued
                sent_bytes -= len(protected[sent + lost])
                lost += 1
        self._octets += sum(map(len, payloads))
        self.packets_sent += count
        if lost:
            self.packets_dropped += lost
        # What aiortc's RTCP task puts in the next sender report, and getStats() shows.
        sender = self._sender
        setattr(sender, _NTP_TIMESTAMP, ntp)
        setattr(sender, _RTP_TIMESTAMP, timestamp)
        setattr(sender, _OCTET_COUNT, self._octets)
        setattr(sender, _PACKET_COUNT, self.packets_sent)
        self._count_transport(sent, sent_bytes)
        return lost == 0

    def _deliver(self, packet: Packet) -> bool:
        """The Feed's sink once direct: runs on the camera's ingest thread, never blocks."""
        rtp_ts = self._track.stamp(packet)
        if self._stopped:
            return False
        if not self._sender._enabled:
            return True
        if not self._connected():
            self._stopped = True  # aiortc is stopping this sender; the loop task ends with it
            return False
        try:
            return self._send_unit(packet, rtp_ts)
        except ConnectionError:
            self._stopped = True
            return False

    async def _run(self, codec: RTCRtpCodecParameters) -> None:
        sender = self._sender
        getattr(sender, _S + "rtp_started").set()
        self._pt = codec.payloadType or 0  # always set once negotiated
        self._ssrc = sender._ssrc
        self._template = self._extension_template()
        try:
            while True:
                packet, rtp_ts = await self._track.next_unit()
                if self.direct:  # cannot happen (a direct subscription queues nothing); never send twice
                    continue
                if not sender._enabled:
                    continue
                if self._send is None:
                    self._connect()
                elif not self._connected():
                    raise ConnectionError("DTLS transport is not connected")
                self._send_unit(packet, rtp_ts)
                if self._allow_direct and self._raw_socket and self._track.go_direct(self._deliver):
                    # From here the ingest thread sends; this task waits in next_unit() for the end.
                    self.direct = True
        except (asyncio.CancelledError, ConnectionError, MediaStreamError):
            pass
        except Exception:
            # aiortc's stop() waits for rtp_exited: log and fall through rather than hang it.
            log.exception("passthrough RTP loop failed")
        finally:
            self._stopped = True
            self._track.stop()
            getattr(sender, _S + "rtp_exited").set()

    def _count_transport(self, packets: int, sent: int) -> None:
        # getStats() counters only: the loop's RTCP and this sender's thread may both add (a count
        # lost to a thread switch between read and write is not worth a lock per frame).
        dtls = self._sender.transport
        setattr(dtls, _TX_PACKETS, getattr(dtls, _TX_PACKETS, 0) + packets)
        setattr(dtls, _TX_BYTES, getattr(dtls, _TX_BYTES, 0) + sent)

    # -- NACK ---------------------------------------------------------------------------------

    async def _retransmit(self, sequence_number: int) -> None:
        """Resend a packet the player reported lost: as RTX (RFC 4588) when negotiated, else as is."""
        for entry in reversed(self._history):
            index = (sequence_number - entry[0]) & 0xFFFF
            if index < len(entry[3]):
                break
        else:
            return  # older than the history: the player waits for the next keyframe
        _, timestamp, ext, payloads = entry
        payload = payloads[index]
        marker = 0x80 if index == len(payloads) - 1 else 0
        sender = self._sender
        first = 0x90 if ext else 0x80
        rtx_pt = getattr(sender, _S + "rtx_payload_type")
        if rtx_pt is not None:
            header = _HEADER.pack(first, marker | rtx_pt, self._rtx_seq, timestamp, sender._rtx_ssrc)
            data = header + ext + _SEQ.pack(sequence_number) + payload
            self._rtx_seq = (self._rtx_seq + 1) & 0xFFFF
        else:
            data = (
                _HEADER.pack(first, marker | self._pt, sequence_number, timestamp, sender._ssrc)
                + ext
                + payload
            )
        send, protect = self._send, self._protect
        if send is None or protect is None or self._stopped:
            return
        try:
            send(protect(data), self._addr)
        except OSError:  # closed, or the buffer is full: the player asks again
            return
        self.retransmissions += 1
        self._count_transport(1, len(data))
