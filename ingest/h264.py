"""H.264 bitstream helpers: Annex-B NAL scanning, avcC → Annex-B, SPS/PPS in-band before keyframes.

Pure bytes work (no PyAV), so it is unit-tested on hand-made access units. Only keyframes are
scanned; ordinary frames pass through without being looked at (passthrough must cost ~nothing).
"""

from __future__ import annotations

from dataclasses import dataclass

START_CODE = b"\x00\x00\x00\x01"

NAL_SLICE = 1
NAL_IDR = 5
NAL_SEI = 6
NAL_SPS = 7
NAL_PPS = 8
NAL_AUD = 9


def is_annexb(data: bytes) -> bool:
    """True when ``data`` starts with an Annex-B start code (3 or 4 bytes)."""
    return data.startswith(b"\x00\x00\x01") or data.startswith(START_CODE)


def split_annexb(data: bytes) -> list[bytes]:
    """The NAL units of an Annex-B buffer, without their start codes (empty units skipped)."""
    nals: list[bytes] = []
    pos = data.find(b"\x00\x00\x01")
    if pos < 0:
        return [data] if data else []
    start = pos + 3
    while True:
        nxt = data.find(b"\x00\x00\x01", start)
        if nxt < 0:
            end = len(data)
        else:
            # A 4-byte start code's leading zero belongs to the next start code, not to this NAL.
            end = nxt - 1 if nxt > start and data[nxt - 1] == 0 else nxt
        nal = data[start:end]
        # Trailing zero bytes are padding (trailing_zero_8bits), not NAL payload.
        nal = nal.rstrip(b"\x00") if nxt < 0 else nal
        if nal:
            nals.append(nal)
        if nxt < 0:
            return nals
        start = nxt + 3


def nal_type(nal: bytes) -> int:
    return nal[0] & 0x1F if nal else -1


def join_annexb(nals: list[bytes]) -> bytes:
    return b"".join(START_CODE + nal for nal in nals)


def length_prefixed_to_annexb(data: bytes, length_size: int = 4) -> bytes:
    """Convert an AVCC (length-prefixed, as in MP4/FLV) access unit to Annex-B.

    Raises ValueError when a length runs past the end (corrupt packet or wrong ``length_size``).
    """
    if length_size not in (1, 2, 3, 4):
        raise ValueError(f"bad NAL length size {length_size}")
    out: list[bytes] = []
    pos = 0
    total = len(data)
    while pos < total:
        if pos + length_size > total:
            raise ValueError("truncated NAL length")
        size = int.from_bytes(data[pos : pos + length_size], "big")
        pos += length_size
        if size == 0 or pos + size > total:
            raise ValueError("NAL length runs past the end of the packet")
        out.append(START_CODE)
        out.append(data[pos : pos + size])
        pos += size
    return b"".join(out)


@dataclass(frozen=True, slots=True)
class ParameterSets:
    """The SPS and PPS NAL units (without start codes) a decoder needs before a keyframe."""

    sps: tuple[bytes, ...] = ()
    pps: tuple[bytes, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.sps) and bool(self.pps)

    def annexb(self) -> bytes:
        return join_annexb([*self.sps, *self.pps])


@dataclass(frozen=True, slots=True)
class Extradata:
    """What a stream's extradata tells: the parameter sets and how packets frame their NALs."""

    params: ParameterSets
    length_size: int | None
    """NAL length size for avcC streams (packets are length-prefixed); None for Annex-B streams."""


def parse_avcc(extradata: bytes) -> Extradata:
    """Parse an AVCDecoderConfigurationRecord (ISO/IEC 14496-15 §5.2.4.1)."""
    if len(extradata) < 7 or extradata[0] != 1:
        raise ValueError("not an avcC record")
    length_size = (extradata[4] & 0x03) + 1
    pos = 5
    sps: list[bytes] = []
    pps: list[bytes] = []
    for target, count_mask in ((sps, 0x1F), (pps, 0xFF)):
        if pos >= len(extradata):
            raise ValueError("avcC record truncated")
        count = extradata[pos] & count_mask
        pos += 1
        for _ in range(count):
            if pos + 2 > len(extradata):
                raise ValueError("avcC record truncated")
            size = int.from_bytes(extradata[pos : pos + 2], "big")
            pos += 2
            if pos + size > len(extradata):
                raise ValueError("avcC record truncated")
            target.append(extradata[pos : pos + size])
            pos += size
    return Extradata(ParameterSets(tuple(sps), tuple(pps)), length_size)


def parse_extradata(extradata: bytes | None) -> Extradata:
    """Parameter sets from a stream's extradata, whether avcC (MP4) or Annex-B (RTSP sprop)."""
    if not extradata:
        return Extradata(ParameterSets(), None)
    if is_annexb(extradata):
        nals = split_annexb(extradata)
        return Extradata(
            ParameterSets(
                tuple(n for n in nals if nal_type(n) == NAL_SPS),
                tuple(n for n in nals if nal_type(n) == NAL_PPS),
            ),
            None,
        )
    return parse_avcc(extradata)


class ParameterSetInserter:
    """Makes every keyframe carry SPS/PPS in-band (issue 3; DESIGN decision 4).

    Many cameras send SPS/PPS only in the SDP (``sprop-parameter-sets``); a browser decoder joining
    mid-stream then never gets them. The inserter remembers the latest parameter sets (from the
    extradata, updated from any in-band ones so a camera's resolution change is followed) and
    prepends them to a keyframe that lacks them. Non-keyframes are returned untouched, unscanned.
    """

    def __init__(self, params: ParameterSets | None = None) -> None:
        self.params = params or ParameterSets()
        self.inserted = 0
        """Keyframes that needed the parameter sets prepended."""

    def process(self, data: bytes, keyframe: bool) -> bytes:
        if not keyframe:
            return data
        nals = split_annexb(data)
        sps = tuple(n for n in nals if nal_type(n) == NAL_SPS)
        pps = tuple(n for n in nals if nal_type(n) == NAL_PPS)
        if sps and pps:
            if (sps, pps) != (self.params.sps, self.params.pps):
                self.params = ParameterSets(sps, pps)
            return data
        params = ParameterSets(sps or self.params.sps, pps or self.params.pps)
        if not params:
            return data  # nothing known yet: hand it on as is, a decoder may still have them from SDP
        self.inserted += 1
        # Keep an access unit delimiter first, as H.264 requires; parameter sets go right after it.
        head = [n for n in nals[:1] if nal_type(n) == NAL_AUD]
        rest = [n for n in nals[len(head) :] if nal_type(n) not in (NAL_SPS, NAL_PPS)]
        return join_annexb([*head, *params.sps, *params.pps, *rest])


def has_parameter_sets(data: bytes) -> bool:
    """True when an Annex-B access unit carries both an SPS and a PPS."""
    types = {nal_type(n) for n in split_annexb(data)}
    return NAL_SPS in types and NAL_PPS in types


def has_idr(data: bytes) -> bool:
    return any(nal_type(n) == NAL_IDR for n in split_annexb(data))
