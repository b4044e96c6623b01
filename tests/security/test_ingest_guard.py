"""Ingest checks a URL itself before it opens anything, whatever the registry let through."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from ingest import Login, Source, SourceOptions, State
from ingest.url import Endpoint
from tests.security.doubles import RecordingServer, rtsp_401_basic


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


async def test_credentials_are_never_sent_to_a_host_they_do_not_belong_to() -> None:
    with RecordingServer(rtsp_401_basic) as other:
        bound = Login("admin", "S3cret-pw", endpoint=Endpoint("rtsp", "127.0.0.1", 8554))
        source = Source(
            "guard-login",
            f"rtsp://127.0.0.1:{other.port}/live",
            loop=asyncio.get_running_loop(),
            on_packet=lambda p: None,
            login=bound,
        )
        source.start()
        try:
            await until(lambda: source.stats.failures >= 2, 10, "two failed rounds")
            assert other.connections == 0
            assert source.stats.reason == "blocked"
            assert "S3cret" not in (source.stats.snapshot().last_error or "")
        finally:
            assert await source.aclose()


def test_a_probe_checks_the_url_before_it_connects() -> None:
    from ingest.netpolicy import NetworkPolicy
    from ingest.probe import probe

    with RecordingServer() as target:
        for url, policy in (
            (f"rtsp://127.0.0.1:{target.port}/x\r\nQUIT", None),
            (f"rtsp://127.0.0.1:{target.port}/x", NetworkPolicy.build(service_local_ports=[target.port])),
        ):
            result = probe(url, timeout=3, policy=policy)
            assert result.error == "blocked"
        assert target.connections == 0
