"""One camera stream's lifecycle inside the hub: its Feed, its ingest Source while wanted, its idle timer.

Between the hub (``videohub.hub.manager``, which decides *whether* a stream is wanted) and ingest
(``ingest.source.Source``, the thread that pulls it). A ``StreamRunner`` starts the source, moves it
to a new generation when the URL, transport or credentials change, and stops it
``on_demand_idle`` seconds after the last viewer leaves (go2rtc's Stream: the last consumer leaving
stops the producer). Stopping tells the thread at once and joins it off the loop, in the hub's tasks.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import ClassVar, Literal

from ingest.handoff import Handoff
from ingest.netpolicy import NetworkPolicy
from ingest.normalize import Ceiling, StreamInfo
from ingest.reconnect import BackoffPolicy, State, Transition
from ingest.source import Login, Source, SourceOptions
from ingest.stats import StatsSnapshot, StreamState
from ingest.url import redact
from videohub.aio import TaskOwner
from videohub.hub.feed import Feed, FeedInfo
from videohub.models import CameraStream
from videohub.settings.ingest import IngestSettings

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class FeedStats:
    """One camera stream as the API shows it: the feed's side and the ingest's stats."""

    # The API's schema is this dataclass: pydantic takes each field's docstring as its description.
    __pydantic_config__: ClassVar[dict[str, bool]] = {"use_attribute_docstrings": True}

    stream: Literal["main", "sub"]
    url: str
    """Stream URL without credentials."""
    transport: str
    state: StreamState
    """connecting, streaming, backing_off (ingest states), idle (on_demand, nobody watching)."""
    reason: str | None
    """Why it is backing off: auth_failed, not_found, refused, unreachable, timeout, stalled,
    unsupported_codec, blocked (the URL was refused before opening), eof, error."""
    always_on: bool
    subscribers: int
    subscriber_drops: int
    """Packets viewers lost by falling behind."""
    gop_packets: int
    """Packets a new viewer receives at once (since the last keyframe)."""
    ingest: StatsSnapshot | None
    """Stats of the current (or, when idle, the last) ingest session."""


def source_options(
    settings: IngestSettings,
    transport: str,
    policy: NetworkPolicy | None = None,
    *,
    allow_files: bool = True,
) -> SourceOptions:
    transcode = settings.transcode
    return SourceOptions(
        policy=policy,
        allow_files=allow_files,
        transport="udp" if transport == "udp" else "tcp",
        open_timeout=settings.open_timeout,
        read_timeout=settings.read_timeout,
        stall_timeout=settings.stall_timeout,
        analyzeduration_us=settings.analyzeduration_us,
        probesize=settings.probesize,
        ceiling=Ceiling(
            max_height=transcode.max_height,
            max_fps=transcode.max_fps,
            max_bitrate_kbps=transcode.max_bitrate_kbps,
            gop_seconds=transcode.gop_seconds,
        ),
        backoff=BackoffPolicy(
            initial=settings.backoff_initial,
            maximum=settings.backoff_max,
            reset_after=settings.backoff_reset_after,
        ),
    )


@dataclass(frozen=True, slots=True)
class RunnerContext:
    """What every runner of one hub shares: settings, URL policy, the loop, the packet handoff, the
    hub's tasks (where stopped sources are joined)."""

    settings: IngestSettings
    policy: NetworkPolicy | None
    allow_files: bool
    loop: asyncio.AbstractEventLoop
    handoff: Handoff
    tasks: TaskOwner


class StreamRunner:
    """One camera stream: its Feed (always), its Source (while wanted), its idle timer."""

    def __init__(
        self,
        ctx: RunnerContext,
        camera_id: str,
        name: Literal["main", "sub"],
        spec: CameraStream,
        always_on: bool,
    ) -> None:
        self.ctx = ctx
        self.name = name
        buffer = ctx.settings.subscriber_buffer
        self.feed = Feed(
            camera_id,
            name,
            max_packets=buffer.max_packets,
            max_bytes=buffer.max_bytes,
            gop_max_bytes=ctx.settings.gop_cache_max_bytes,
            handoff=ctx.handoff,
        )
        self.spec = spec
        self.always_on = always_on
        self.source: Source | None = None
        self.login: Login | None = None
        self.idle: asyncio.TimerHandle | None = None
        self.last_stats: StatsSnapshot | None = None
        self.feed.on_idle = lambda _feed: self._on_idle()

    @property
    def wanted(self) -> bool:
        return self.always_on or self.feed.subscribers > 0

    def _options(self) -> SourceOptions:
        ctx = self.ctx
        return source_options(ctx.settings, self.spec.transport, ctx.policy, allow_files=ctx.allow_files)

    def start_source(self, login: Login | None) -> None:
        feed = self.feed
        feed.reset()
        self.login = login
        source: Source

        def on_info(info: StreamInfo) -> None:
            if self.source is source:
                feed.set_info(FeedInfo(info.codec, info.width, info.height, info.mode))

        def on_state(transition: Transition) -> None:
            # A session that ended leaves no live picture: newcomers must not start from a stale GOP.
            if self.source is source and transition.state in (State.BACKING_OFF, State.STOPPED):
                feed.reset()

        source = Source(
            feed.key,
            self.spec.url,
            loop=self.ctx.loop,
            on_packet=feed.publish,
            on_state=on_state,
            on_info=on_info,
            login=login,
            options=self._options(),
            handoff=self.ctx.handoff,
            # Feed.publish is thread-safe: packets nobody watches never wake the loop.
            packets_in_thread=True,
        )
        self.source = source
        source.start()
        log.info("%s: ingest started (%s)", feed.key, redact(self.spec.url))

    def restart_source(self, login: Login | None) -> None:
        """New URL, transport or credentials: the same thread moves to a new generation."""
        assert self.source is not None
        self.login = login
        self.feed.reset()
        self.source.restart(self.spec.url, login, self._options())

    def stop_source(self) -> None:
        source = self.source
        if source is None:
            return
        self.source = None
        self.last_stats = source.stats.snapshot()
        source.stop()
        self.feed.reset()
        self.ctx.tasks.spawn(self._join(source), name=f"hub-join-{source.name}")

    async def _join(self, source: Source) -> None:
        if not await source.aclose():
            log.warning("%s: ingest thread did not end in time", source.name)

    def cancel_idle(self) -> None:
        if self.idle is not None:
            self.idle.cancel()
            self.idle = None

    def _on_idle(self) -> None:
        if not self.always_on and self.source is not None and self.idle is None:
            self.schedule_idle()

    def schedule_idle(self) -> None:
        delay = self.ctx.settings.on_demand_idle

        def fire() -> None:
            self.idle = None
            if self.feed.subscribers == 0 and not self.always_on and not self.feed.closed:
                log.info("%s: no viewers for %.0f s, stopping ingest", self.feed.key, delay)
                self.stop_source()

        self.idle = self.ctx.loop.call_later(delay, fire)

    def drop(self, reason: str) -> None:
        """The stream is no longer registered: stop ingest and end the Feed (viewers get FeedClosed)."""
        self.cancel_idle()
        self.stop_source()
        self.feed.close(reason)
        log.info("%s: feed closed: %s", self.feed.key, reason)

    def shutdown(self) -> Source | None:
        """The service is stopping: tell the thread to stop and end the Feed; the caller joins the
        returned source (all together, off the loop)."""
        self.cancel_idle()
        source, self.source = self.source, None
        if source is not None:
            source.stop()
        self.feed.close("the service is stopping")
        return source

    def stats(self) -> FeedStats:
        source = self.source
        ingest = source.stats.snapshot() if source is not None else self.last_stats
        if source is not None:
            state = ingest.state if ingest is not None else StreamState.CONNECTING
            reason = ingest.reason if ingest is not None else None
        else:
            state, reason = StreamState.IDLE, None
        return FeedStats(
            stream=self.name,
            url=redact(self.spec.url),
            transport=self.spec.transport,
            state=state,
            reason=reason,
            always_on=self.always_on,
            subscribers=self.feed.subscribers,
            subscriber_drops=self.feed.subscriber_drops,
            gop_packets=self.feed.gop_packets,
            ingest=ingest,
        )
