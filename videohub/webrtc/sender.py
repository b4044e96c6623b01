"""The RTP send loop of one passthrough viewer, replacing aiortc's ``RTCRtpSender._run_rtp``.

Profiling 10 viewers of a 720p ~2 Mbit/s feed (bench/fanout_cpu.py) showed where aiortc's generic
loop spends the server's time per RTP packet and per viewer: the datetime-based NTP clock for
abs-send-time (~8 %), H.264 packetizing (~9 %), an ``RtpPacket`` object plus its serialization, and
four awaited calls (``RTCDtlsTransport._send_rtp`` → ``RTCIceTransport`` → aioice ``Connection.send``
→ ``StunProtocol.send_data``) around the only two steps that must be done per viewer: SRTP protect
and ``sendto``. This loop keeps those two, builds the 12-byte header and the header extensions with
``struct``, takes the payloads from the shared :class:`Packetizer`, and awaits once per access unit.

What browsers rely on is kept: the negotiated header extensions (mid, abs-send-time: aiortc
negotiates no others), the RTX payload type and SSRC, NACK retransmission (from this loop's own
history, which shares the payload bytes with every other viewer), and aiortc's RTCP task, which
still sends sender reports and SDES from the counters this loop updates.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import struct
import time
from typing import Any

from aiortc import RTCRtpSender
from aiortc.mediastreams import MediaStreamError
from aiortc.rtcrtpparameters import RTCRtpCodecParameters
from aiortc.rtp import HeaderExtensions

from videohub.webrtc.packetizer import Packetizer
from videohub.webrtc.track import FeedTrack

log = logging.getLogger(__name__)

HISTORY = 512
"""Packets kept for NACK (~2 s at 2 Mbit/s; a 720p keyframe alone can be 100 packets)."""
_NTP_EPOCH = 2_208_988_800
_HEADER = struct.Struct("!BBHLL")
_EXT_HEADER = struct.Struct("!HH")
_SEQ = struct.Struct("!H")

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


class PassthroughSender:
    """Sends one FeedTrack to one player: owns the RTP sequence numbers, timestamps and NACK history.

    Installed on the transceiver's ``RTCRtpSender`` before negotiation (``install``); aiortc then
    starts this loop instead of its own when the DTLS transport connects, and stops it the same way.
    """

    def __init__(self, sender: RTCRtpSender, track: FeedTrack, packetizer: Packetizer) -> None:
        self._sender = sender
        self._track = track
        self._packetizer = packetizer
        self._history: list[tuple[int, int, int, bytes, bytes] | None] = [None] * HISTORY
        self._rtx_seq = secrets.randbits(15)  # as aiortc: the lower half, so SRTP's ROC never wraps early
        self._pt = 0
        self.packets_sent = 0
        self.retransmissions = 0

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

    def _send_function(self) -> Any:
        """``sendto(data)`` on the selected ICE pair (aioice keeps it in ``_nominated``)."""
        dtls = self._sender.transport
        if dtls.state != "connected":
            raise ConnectionError("DTLS transport is not connected")
        pair = dtls.transport._connection._nominated.get(1)
        if pair is None:
            raise ConnectionError("no selected ICE candidate pair")
        udp = pair.protocol.transport
        addr = pair.remote_addr
        return lambda data: udp.sendto(data, addr)

    async def _run(self, codec: RTCRtpCodecParameters) -> None:
        sender = self._sender
        getattr(sender, _S + "rtp_started").set()
        pt = self._pt = codec.payloadType or 0  # always set once negotiated
        ssrc = sender._ssrc
        seq = secrets.randbits(15)
        origin = secrets.randbits(32)
        history = self._history
        octets = packets = 0
        pack_header = _HEADER.pack
        template = self._extension_template()
        dtls = sender.transport
        send: Any = None
        protect: Any = None
        try:
            while True:
                packet, rtp_ts = await self._track.next_unit()
                if not sender._enabled:
                    continue
                payloads = self._packetizer.payloads(packet)
                if not payloads:
                    continue
                if dtls.state != "connected":
                    raise ConnectionError("DTLS transport is not connected")
                if send is None:
                    # The selected pair and the SRTP session stay for the session's life (aiortc
                    # does no ICE restart): looked up once, not per frame.
                    send = self._send_function()
                    protect = dtls._tx_srtp.protect
                ntp = _ntp_now()
                if template is not None:
                    ext = template[0] + ((ntp >> 14) & 0x00FFFFFF).to_bytes(3, "big") + template[1]
                else:
                    ext = self._extensions(ntp)
                first = 0x90 if ext else 0x80
                timestamp = (origin + rtp_ts) & 0xFFFFFFFF
                last = len(payloads) - 1
                sent_bytes = 0
                for i, payload in enumerate(payloads):
                    marker = 0x80 if i == last else 0
                    protected = protect(pack_header(first, marker | pt, seq, timestamp, ssrc) + ext + payload)
                    send(protected)
                    sent_bytes += len(protected)
                    history[seq % HISTORY] = (seq, timestamp, marker, ext, payload)
                    octets += len(payload)
                    seq = (seq + 1) & 0xFFFF
                packets += len(payloads)
                self.packets_sent = packets
                # What aiortc's RTCP task puts in the next sender report, and getStats() shows.
                setattr(sender, _NTP_TIMESTAMP, ntp)
                setattr(sender, _RTP_TIMESTAMP, timestamp)
                setattr(sender, _OCTET_COUNT, octets)
                setattr(sender, _PACKET_COUNT, packets)
                self._count_transport(len(payloads), sent_bytes)
        except (asyncio.CancelledError, ConnectionError, MediaStreamError):
            pass
        except Exception:
            # aiortc's stop() waits for rtp_exited: log and fall through rather than hang it.
            log.exception("passthrough RTP loop failed")
        finally:
            self._track.stop()
            getattr(sender, _S + "rtp_exited").set()

    def _count_transport(self, packets: int, sent: int) -> None:
        dtls = self._sender.transport
        setattr(dtls, _TX_PACKETS, getattr(dtls, _TX_PACKETS, 0) + packets)
        setattr(dtls, _TX_BYTES, getattr(dtls, _TX_BYTES, 0) + sent)

    # -- NACK ---------------------------------------------------------------------------------

    async def _retransmit(self, sequence_number: int) -> None:
        """Resend a packet the player reported lost: as RTX (RFC 4588) when negotiated, else as is."""
        entry = self._history[sequence_number % HISTORY]
        if entry is None or entry[0] != sequence_number:
            return
        seq, timestamp, marker, ext, payload = entry
        sender = self._sender
        first = 0x90 if ext else 0x80
        rtx_pt = getattr(sender, _S + "rtx_payload_type")
        if rtx_pt is not None:
            header = _HEADER.pack(first, marker | rtx_pt, self._rtx_seq, timestamp, sender._rtx_ssrc)
            data = header + ext + _SEQ.pack(seq) + payload
            self._rtx_seq = (self._rtx_seq + 1) & 0xFFFF
        else:
            data = _HEADER.pack(first, marker | self._pt, seq, timestamp, sender._ssrc) + ext + payload
        try:
            self._send_function()(sender.transport._tx_srtp.protect(data))
        except ConnectionError:
            return
        self.retransmissions += 1
        self._count_transport(1, len(data))
