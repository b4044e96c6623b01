"""Feed fan-out: GOP-cache start, bounded buffers, skip-to-keyframe, drop counts, FeedClosed."""

from __future__ import annotations

import asyncio
import threading
from fractions import Fraction

import pytest

from ingest.handoff import Handoff
from ingest.packet import Packet
from videohub.errors import DeliveryFailed, FeedClosed
from videohub.hub.feed import Feed, FeedInfo

TB = Fraction(1, 90000)


def packet(n: int, keyframe: bool = False, size: int = 1000) -> Packet:
    return Packet(data=bytes(size), pts=n * 6000, time_base=TB, keyframe=keyframe, received=float(n))


def gop(start: int, length: int, size: int = 1000) -> list[Packet]:
    return [packet(start + i, keyframe=(i == 0), size=size) for i in range(length)]


async def test_new_subscriber_starts_with_the_cached_gop() -> None:
    feed = Feed("cam", "main")
    for p in gop(0, 10) + gop(10, 4):
        feed.publish(p)
    sub = feed.subscribe()
    first = await sub.get()
    assert first.keyframe and first.pts == 10 * 6000  # the latest keyframe, not the next one
    rest = [await sub.get() for _ in range(3)]
    assert [p.pts for p in rest] == [11 * 6000, 12 * 6000, 13 * 6000]
    feed.publish(packet(14))
    assert (await sub.get()).pts == 14 * 6000
    assert sub.drops == 0


async def test_subscriber_joining_before_any_keyframe_starts_at_a_keyframe() -> None:
    feed = Feed("cam", "main")
    sub = feed.subscribe()
    feed.publish(packet(0))
    feed.publish(packet(1))
    feed.publish(packet(2, keyframe=True))
    first = await asyncio.wait_for(sub.get(), 1)
    assert first.keyframe and first.pts == 2 * 6000
    assert sub.drops == 2


async def test_a_stalled_subscriber_stays_bounded_and_does_not_hold_back_another() -> None:
    feed = Feed("cam", "main", max_packets=50, max_bytes=40_000)
    stalled = feed.subscribe()
    reader = feed.subscribe()
    received = 0
    for g in range(40):  # 40 GOPs of 25 packets, ~1 MB in all
        for p in gop(g * 25, 25):
            feed.publish(p)
            await reader.get()
            received += 1
            assert stalled.queued <= 50 and stalled.queued_bytes <= 40_000
    assert received == 1000 and reader.drops == 0
    assert stalled.drops > 900
    # When it reads again it resumes at a keyframe, never mid-GOP.
    assert (await stalled.get()).keyframe


async def test_a_subscriber_a_whole_gop_behind_skips_to_the_new_keyframe() -> None:
    feed = Feed("cam", "main")
    sub = feed.subscribe()
    for p in gop(0, 5):
        feed.publish(p)
    assert (await sub.get()).pts == 0  # read the keyframe, then fall behind
    for p in gop(5, 5):
        feed.publish(p)  # GOP 2 arrives while 4 packets of GOP 1 are unread: still < 1 GOP behind
    assert sub.drops == 0
    for p in gop(10, 5):
        feed.publish(p)  # GOP 3 arrives with all of GOP 2 unread: skip
    first = await sub.get()
    assert first.keyframe and first.pts == 10 * 6000
    assert sub.drops == 9


async def test_overflow_mid_gop_waits_for_the_next_keyframe() -> None:
    feed = Feed("cam", "main", max_packets=8, max_bytes=1_000_000)
    sub = feed.subscribe()
    for p in gop(0, 20):
        feed.publish(p)
    assert sub.queued == 0  # overflowed at packet 9; everything after waits for a keyframe
    assert sub.drops == 20
    feed.publish(packet(20, keyframe=True))
    assert (await sub.get()).pts == 20 * 6000


async def test_a_gop_larger_than_the_buffer_is_not_sent_as_a_burst() -> None:
    feed = Feed("cam", "main", max_packets=8)
    for p in gop(0, 12):
        feed.publish(p)
    sub = feed.subscribe()
    assert sub.queued == 0
    feed.publish(packet(12, keyframe=True))
    assert (await sub.get()).keyframe


async def test_closing_the_feed_ends_every_subscription() -> None:
    feed = Feed("cam", "main")
    sub = feed.subscribe()
    waiting = asyncio.create_task(sub.get())
    await asyncio.sleep(0)
    feed.close("the camera was deleted")
    with pytest.raises(FeedClosed, match="deleted"):
        await waiting
    with pytest.raises(FeedClosed):
        feed.subscribe()
    feed.close("again")  # idempotent


async def test_closing_a_subscription_is_idempotent_and_reports_idle() -> None:
    idle: list[str] = []
    feed = Feed("cam", "main", on_idle=lambda f: idle.append(f.key))
    a = feed.subscribe()
    b = feed.subscribe()
    a.close()
    a.close()
    assert idle == [] and feed.subscribers == 1
    b.close()
    assert idle == ["cam/main"]
    with pytest.raises(FeedClosed):
        await b.get()


async def test_reset_forgets_the_stale_picture() -> None:
    feed = Feed("cam", "main")
    for p in gop(0, 3):
        feed.publish(p)
    feed.reset()
    assert feed.last_keyframe is None and feed.gop_packets == 0
    sub = feed.subscribe()
    assert sub.queued == 0


async def test_subscription_reports_the_feed_info_and_keyframe_waiters_wake() -> None:
    feed = Feed("cam", "main")
    sub = feed.subscribe()
    assert sub.info is None
    feed.set_info(FeedInfo("h264", 640, 360, "passthrough"))
    assert sub.info == FeedInfo("h264", 640, 360, "passthrough")
    waiter = asyncio.create_task(feed.keyframe())
    await asyncio.sleep(0)
    feed.publish(packet(0, keyframe=True))
    assert (await waiter).keyframe


def publish_all(feed: Feed, packets: list[Packet]) -> None:
    for p in packets:
        feed.publish(p)


async def test_packets_published_from_the_ingest_thread_reach_a_waiting_subscriber() -> None:
    handoff = Handoff(asyncio.get_running_loop())
    feed = Feed("cam", "main", handoff=handoff)
    sub = feed.subscribe()
    waiting = asyncio.create_task(sub.get())
    await asyncio.sleep(0)
    thread = threading.Thread(target=publish_all, args=(feed, gop(0, 30)))
    thread.start()
    got = [await asyncio.wait_for(waiting, 2.0)]
    got += [await asyncio.wait_for(sub.get(), 2.0) for _ in range(29)]
    thread.join()
    assert [p.pts for p in got] == [p.pts for p in gop(0, 30)]
    assert handoff.wakeups <= 30


async def test_a_feed_nobody_watches_never_wakes_the_loop() -> None:
    handoff = Handoff(asyncio.get_running_loop())
    feed = Feed("cam", "main", handoff=handoff)
    thread = threading.Thread(target=publish_all, args=(feed, gop(0, 50)))
    thread.start()
    thread.join()
    assert handoff.calls == 0
    assert feed.gop_packets == 50 and feed.last_keyframe is not None


async def test_a_caught_up_subscriber_gets_packets_in_the_ingest_thread_in_order() -> None:
    handoff = Handoff(asyncio.get_running_loop())
    feed = Feed("cam", "main", handoff=handoff)
    publish_all(feed, gop(0, 5))
    sub = feed.subscribe()
    got: list[tuple[int | None, str]] = []

    def sink(p: Packet) -> bool:
        got.append((p.pts, threading.current_thread().name))
        return True

    assert not sub.direct(sink)  # the GOP burst is still queued: read it first
    burst = [await sub.get() for _ in range(5)]
    assert sub.direct(sink) and sub.is_direct
    thread = threading.Thread(target=publish_all, args=(feed, gop(5, 30)), name="ingest-cam")
    thread.start()
    thread.join()
    # Every packet once, in order, in the ingest thread; the loop was never woken for them.
    assert [p.pts for p in burst] + [pts for pts, _ in got] == [p.pts for p in gop(0, 35)]
    assert {name for _, name in got} == {"ingest-cam"}
    assert handoff.calls == 0 and sub.queued == 0 and sub.delivered == 35 and sub.drops == 0
    # Leaving stops the calls; get() reports the end as for any subscriber.
    waiting = asyncio.create_task(sub.get())
    await asyncio.sleep(0)
    sub.close()
    with pytest.raises(FeedClosed):
        await waiting
    feed.publish(packet(40))
    assert len(got) == 30


async def test_a_failing_sink_ends_its_subscription_only() -> None:
    handoff = Handoff(asyncio.get_running_loop())
    feed = Feed("cam", "main", handoff=handoff)
    broken, dropping, queued = feed.subscribe(), feed.subscribe(), feed.subscribe()
    calls: list[int] = []

    def fails(p: Packet) -> bool:
        calls.append(1)
        raise OSError("socket gone")

    assert broken.direct(fails) and dropping.direct(lambda p: False)
    waiting = asyncio.create_task(broken.get())
    await asyncio.sleep(0)
    thread = threading.Thread(target=publish_all, args=(feed, gop(0, 10)))
    thread.start()
    thread.join()
    with pytest.raises(DeliveryFailed, match="delivery failed"):
        await asyncio.wait_for(waiting, 2.0)
    assert len(calls) == 1 and broken.closed and feed.subscribers == 2
    assert dropping.drops == 10 and dropping.delivered == 0  # False: counted as dropped
    assert [(await queued.get()).pts for _ in range(10)] == [p.pts for p in gop(0, 10)]
