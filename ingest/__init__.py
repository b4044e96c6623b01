"""Pulling camera streams: open a URL with PyAV, reconnect, demux, normalize, count.

Imports nothing from ``videohub`` (the Feed hub wires settings to these parts). The pieces:

- ``source.Source``        one thread per camera stream: open, demux, hand packets on
- ``handoff.Handoff``      batched thread → event loop calls
- ``reconnect.Reconnector`` the connecting → streaming → backing_off → … state machine, backoff, watchdog
- ``normalize.Normalizer`` passthrough of H.264 without B-frames, else transcode once to H.264
- ``h264``                 Annex-B / avcC helpers and SPS/PPS insertion before keyframes
- ``stats.StreamStats``    packet-level counters per stream
- ``errors``               ``Reason`` and the classification of PyAV errors
"""

from ingest.errors import IngestError, Reason, UnsupportedCodec
from ingest.handoff import Handoff
from ingest.normalize import Ceiling, StreamInfo
from ingest.packet import Packet
from ingest.reconnect import BackoffPolicy, State
from ingest.source import Login, Source, SourceOptions
from ingest.stats import StatsSnapshot, StreamStats

__all__ = [
    "BackoffPolicy",
    "Ceiling",
    "Handoff",
    "IngestError",
    "Login",
    "Packet",
    "Reason",
    "Source",
    "SourceOptions",
    "State",
    "StatsSnapshot",
    "StreamInfo",
    "StreamStats",
    "UnsupportedCodec",
]
