"""Ingest checks a URL itself before it opens anything, whatever the registry let through."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from ingest import Source, SourceOptions, State
from tests.security.doubles import RecordingServer


async def until(check: Callable[[], bool], within: float, what: str) -> None:
    deadline = time.monotonic() + within
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {within} s: {what}")
        await asyncio.sleep(0.05)


async def test_a_url_with_control_characters_is_never_opened() -> None:
    with RecordingServer() as target:
        hostile = [
            f"rtsp://127.0.0.1:{target.port}/x\r\nHSET vh:user:me role admin\r\nQUIT",
            f"rtsp://127.0.0.1:{target.port}/x\nQUIT",
            f"rtsp://127.0.0.1:{target.port}/x y",
            f"rtsp://127.0.0.1:{target.port}/\u6444\u50cf\u5934",
        ]
        sources = [
            Source(f"guard-{i}", url, loop=asyncio.get_running_loop(), on_packet=lambda p: None)
            for i, url in enumerate(hostile)
        ]
        for source in sources:
            source.start()
        try:
            await until(lambda: all(s.stats.failures >= 2 for s in sources), 10, "two failed rounds each")
            assert target.connections == 0, target.received[:200]
            for source in sources:
                assert source.state is State.BACKING_OFF
                assert source.stats.reason == "blocked"
        finally:
            assert all(await asyncio.gather(*(s.aclose() for s in sources)))


async def test_a_url_outside_the_allowed_networks_is_never_opened() -> None:
    from ingest.netpolicy import NetworkPolicy

    with RecordingServer() as target:
        policy = NetworkPolicy.build(allowed_networks=["10.0.0.0/8"])
        source = Source(
            "guard-net",
            f"rtsp://127.0.0.1:{target.port}/x",
            loop=asyncio.get_running_loop(),
            on_packet=lambda p: None,
            options=SourceOptions(policy=policy),
        )
        source.start()
        try:
            await until(lambda: source.stats.failures >= 2, 10, "two failed rounds")
            assert target.connections == 0
            assert source.stats.reason == "blocked"
        finally:
            assert await source.aclose()
