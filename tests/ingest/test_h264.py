"""Annex-B / avcC helpers and SPS/PPS insertion, on hand-made access units."""

from __future__ import annotations

import pytest

from ingest.h264 import (
    ParameterSetInserter,
    ParameterSets,
    has_parameter_sets,
    join_annexb,
    length_prefixed_to_annexb,
    nal_type,
    parse_extradata,
    split_annexb,
)

SPS = bytes.fromhex("6742c01eda0280bfe5c0")
PPS = bytes.fromhex("68ce3c80")
AUD = bytes.fromhex("0910")
IDR = bytes.fromhex("65888400aabbcc")
SLICE = bytes.fromhex("419a2233")


def avcc_record(sps: bytes, pps: bytes, length_size: int = 4) -> bytes:
    return (
        bytes([1, sps[1], sps[2], sps[3], 0xFC | (length_size - 1), 0xE1])
        + len(sps).to_bytes(2, "big")
        + sps
        + b"\x01"
        + len(pps).to_bytes(2, "big")
        + pps
    )


def test_split_handles_three_and_four_byte_start_codes() -> None:
    data = b"\x00\x00\x00\x01" + SPS + b"\x00\x00\x01" + PPS + b"\x00\x00\x00\x01" + IDR
    assert split_annexb(data) == [SPS, PPS, IDR]
    assert [nal_type(n) for n in split_annexb(data)] == [7, 8, 5]


def test_avcc_packet_becomes_annexb() -> None:
    avcc = len(IDR).to_bytes(4, "big") + IDR + len(SLICE).to_bytes(4, "big") + SLICE
    assert length_prefixed_to_annexb(avcc) == join_annexb([IDR, SLICE])
    two = len(IDR).to_bytes(2, "big") + IDR
    assert length_prefixed_to_annexb(two, 2) == join_annexb([IDR])


def test_corrupt_avcc_packet_is_rejected() -> None:
    with pytest.raises(ValueError):
        length_prefixed_to_annexb((100).to_bytes(4, "big") + IDR)


def test_extradata_avcc_and_annexb_give_the_same_parameter_sets() -> None:
    avcc = parse_extradata(avcc_record(SPS, PPS, 4))
    annexb = parse_extradata(join_annexb([SPS, PPS]))
    assert avcc.params == annexb.params == ParameterSets((SPS,), (PPS,))
    assert avcc.length_size == 4
    assert annexb.length_size is None
    assert parse_extradata(None).params == ParameterSets()


def test_keyframe_without_parameter_sets_gets_them_after_the_aud() -> None:
    inserter = ParameterSetInserter(ParameterSets((SPS,), (PPS,)))
    keyframe = join_annexb([AUD, IDR])
    fixed = inserter.process(keyframe, keyframe=True)
    assert split_annexb(fixed) == [AUD, SPS, PPS, IDR]
    assert has_parameter_sets(fixed)
    assert inserter.inserted == 1


def test_keyframe_with_parameter_sets_and_other_frames_pass_untouched() -> None:
    inserter = ParameterSetInserter(ParameterSets((SPS,), (PPS,)))
    complete = join_annexb([SPS, PPS, IDR])
    assert inserter.process(complete, keyframe=True) is complete
    frame = join_annexb([SLICE])
    assert inserter.process(frame, keyframe=False) is frame
    assert inserter.inserted == 0


def test_inband_parameter_sets_replace_the_extradata_ones() -> None:
    # A camera switching resolution sends a new SPS in-band; later bare keyframes get the new one.
    new_sps = bytes.fromhex("6742c01fdeadbeef")
    inserter = ParameterSetInserter(ParameterSets((SPS,), (PPS,)))
    inserter.process(join_annexb([new_sps, PPS, IDR]), keyframe=True)
    fixed = inserter.process(join_annexb([IDR]), keyframe=True)
    assert split_annexb(fixed) == [new_sps, PPS, IDR]


def test_without_known_parameter_sets_the_keyframe_is_left_as_is() -> None:
    inserter = ParameterSetInserter()
    keyframe = join_annexb([IDR])
    assert inserter.process(keyframe, keyframe=True) == keyframe
