"""Pull one camera stream with PyAV in its own thread, reconnecting for as long as it is wanted.

``Source`` is the first stage of the media path (camera → **Source** → Normalizer → Feed). It owns
one thread that opens the URL, runs the demux loop, normalizes packets and hands them to the event
loop through a ``Handoff`` (batched ``loop.call_soon_threadsafe``); the loop never blocks on PyAV.
Between sessions the thread follows ``ingest.reconnect.Reconnector`` (backoff, generation id); a
stall watchdog ends a session that stops delivering video. ``stop()`` sets an Event;
``join(timeout)`` waits for the thread, which notices within one read timeout: every blocking read
is bounded by PyAV's interrupt callback (and, for RTSP, by FFmpeg's socket I/O timeout too).

Before every open the URL is checked again (``target_url``): the same ``ingest.url.parse_url`` the
registry applies, the network policy (resolved now, and the connection pinned to the checked
address), and the binding of the credentials to the host they were given for. A URL that fails is
never opened: the session ends as ``blocked`` without a byte on the network. Credentials are
injected into the URL only for ``av.open`` and never stored with it, logged, or put in an error
(``ingest.url.redact``). aiortc's MediaPlayer is not used: it opens synchronously and drops the
first IDR.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Literal, TypeAlias
from urllib.parse import urlsplit

import av
import av.container
import av.error
from av.stream import Stream

from ingest.errors import IngestError, Reason, UnsupportedCodec, classify
from ingest.handoff import Handoff
from ingest.netpolicy import NetworkPolicy
from ingest.normalize import Ceiling, Normalizer, StreamInfo
from ingest.packet import Packet
from ingest.reconnect import BackoffPolicy, Reconnector, State, Transition, Watchdog
from ingest.stats import StreamStats
from ingest.url import (
    SCHEMES,
    TEST_SCHEMES,
    Endpoint,
    UrlError,
    parse_url,
    redact,
    restore_params,
    with_credentials,
    with_host,
)

log = logging.getLogger(__name__)

AvPacket: TypeAlias = "av.Packet[Stream]"

Transport = Literal["tcp", "udp"]


@dataclass(frozen=True, slots=True)
class Login:
    """A stream's secrets, handed to the Source at start and put into the URL only at open time.

    ``username``/``password`` go in as userinfo; ``params`` fill the URL's ``***`` credential
    parameters in order. They are bound to ``endpoint`` (scheme, host, port): ingest refuses to send
    them to any other. Without one, they are bound to the URL they are handed with.
    """

    username: str | None
    password: str = field(default="", repr=False)
    params: tuple[str, ...] = field(default=(), repr=False)
    endpoint: Endpoint | None = None


def _bind(login: Login | None, url: str) -> Login | None:
    if login is None or login.endpoint is not None:
        return login
    try:
        endpoint = parse_url(url).endpoint
    except UrlError:
        return login  # the URL itself is refused at open time
    return replace(login, endpoint=endpoint)


def target_url(
    url: str, login: Login | None, policy: NetworkPolicy | None = None, *, allow_files: bool = True
) -> str:
    """The URL handed to FFmpeg, or UrlError: checked, secrets put back, host pinned (with a policy).

    Blocking when ``policy`` must resolve a name: run it in the ingest (or probe) thread.
    """
    parsed = parse_url(url, schemes=SCHEMES | TEST_SCHEMES if allow_files else SCHEMES)
    endpoint = parsed.endpoint
    if endpoint is None:
        return parsed.url  # a file:// test source
    if login is not None and login.endpoint is not None and login.endpoint != endpoint:
        raise UrlError(f"the stream's credentials belong to {login.endpoint}, not to {endpoint}")
    stored = iter(login.params if login is not None else ())
    values: list[str] = []
    for param in parsed.params:
        value = param.value if param.value is not None else next(stored, None)
        if value is None:
            raise UrlError(f"{param.name}=*** has no stored value")
        values.append(value)
    final, expected = restore_params(parsed.url, values), parsed.url
    if policy is not None:
        address = policy.check(endpoint)[0]
        final, expected = with_host(final, address), with_host(expected, address)
    # A stored value must not change the URL's shape (a '/' or '&' smuggled into a parameter).
    if parse_url(final).url != expected:
        raise UrlError("a stored credential parameter does not fit the URL")
    if login is not None and login.username:
        return with_credentials(final, login.username, login.password)
    return with_credentials(final, parsed.username, parsed.password)


@dataclass(frozen=True, slots=True)
class SourceOptions:
    """How to open and watch a stream (built from IngestSettings by the Feed hub)."""

    transport: Transport = "tcp"
    open_timeout: float = 5.0
    """Seconds for connect + RTSP handshake + probing."""
    read_timeout: float = 5.0
    """Seconds one read may block (bounded further by ``stall_timeout``)."""
    stall_timeout: float = 3.0
    """Seconds without a video packet that end a session as ``stalled``."""
    analyzeduration_us: int = 100_000
    probesize: int = 32_768
    """Probing tuned down: av.open takes ~1.2 s with FFmpeg's defaults, ~0.25 s with these."""
    ceiling: Ceiling = field(default_factory=Ceiling)
    backoff: BackoffPolicy = field(default_factory=BackoffPolicy)
    realtime_files: bool = True
    """Pace file:// sources at their frame rate, as a camera would (demo and tests)."""
    policy: NetworkPolicy | None = None
    """Where URLs may point, checked before every open; None checks the URL's form only."""
    allow_files: bool = True
    """Open file:// test sources (the hub turns this off unless demo.allow_test_sources)."""

    @property
    def blocking_read_timeout(self) -> float:
        return min(self.read_timeout, self.stall_timeout)


def open_options(url: str, options: SourceOptions) -> dict[str, str]:
    """FFmpeg demuxer options for ``url``."""
    opts = {"analyzeduration": str(options.analyzeduration_us), "probesize": str(options.probesize)}
    scheme = urlsplit(url).scheme.lower()
    if scheme in ("rtsp", "rtsps"):
        opts["rtsp_transport"] = options.transport
        # Socket I/O timeout in µs, for the handshake and every later read: a server that accepts and
        # never answers, or stops sending mid-stream, cannot hang the thread.
        opts["timeout"] = str(int(options.blocking_read_timeout * 1_000_000))
        # No fflags=nobuffer: it discards the packets read while probing, and with them the keyframe
        # a camera sends when a session starts, so the first picture waited a whole GOP (measured:
        # 4.2 s with a 4 s GOP, against 0.43 s without it).
        opts["protocol_whitelist"] = "rtsp,rtsps,rtp,udp,tcp,tls"
    elif scheme == "rtmp":
        opts["protocol_whitelist"] = "rtmp,tcp"
    elif scheme in ("http", "https"):
        opts["rw_timeout"] = str(int(options.open_timeout * 1_000_000))
        # A redirect would take the connection past the network policy: FFmpeg's http protocol
        # follows them unless told not to. Playlists (HLS, DASH) would too, through their segment
        # URLs, so only demuxers of a single stream are allowed.
        opts["max_redirects"] = "0"
        opts["protocol_whitelist"] = "http,https,tcp,tls"
        opts["format_whitelist"] = "mjpeg,mpjpeg,h264,hevc,mpegts,flv"
    return opts


PacketHandler = Callable[[Packet], None]
StateHandler = Callable[[Transition], None]
InfoHandler = Callable[[StreamInfo], None]


class Source:
    """One camera stream's ingest thread: open, demux, normalize, reconnect, until stopped."""

    def __init__(
        self,
        name: str,
        url: str,
        *,
        loop: asyncio.AbstractEventLoop,
        on_packet: PacketHandler,
        on_state: StateHandler | None = None,
        on_info: InfoHandler | None = None,
        login: Login | None = None,
        options: SourceOptions | None = None,
        handoff: Handoff | None = None,
        packets_in_thread: bool = False,
    ) -> None:
        """``on_packet`` runs on the loop, unless ``packets_in_thread``: then it runs in the ingest
        thread and must be thread-safe (``Feed.publish`` is), which spares a loop wake-up per packet.
        ``on_state`` and ``on_info`` always run on the loop."""
        self.name = name
        self._url = url
        self._login = _bind(login, url)
        self.options = options or SourceOptions()
        self._handoff = handoff if handoff is not None else Handoff(loop)
        self._on_packet = on_packet
        self._packets_in_thread = packets_in_thread
        self._on_state = on_state
        self._on_info = on_info
        self._reconnector = Reconnector(self.options.backoff)
        self.stats = StreamStats()
        self.info: StreamInfo | None = None
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """The stream URL, without credentials."""
        return redact(self._url)

    @property
    def state(self) -> State:
        return self.stats.state

    @property
    def generation(self) -> int:
        return self._reconnector.generation

    def start(self) -> None:
        if self._thread is not None:
            return
        self._thread = threading.Thread(target=self._run, name=f"ingest-{self.name}", daemon=True)
        self._thread.start()

    def restart(self, url: str, login: Login | None, options: SourceOptions | None = None) -> None:
        """Use a new URL, credentials or options: a new generation starts at once, on this thread.

        The running session ends at its next packet (or read timeout), a pending backoff is cut
        short, and packets of the old generation still queued for the loop are discarded.
        """
        with self._lock:
            self._url = url
            self._login = _bind(login, url)
            if options is not None:
                self.options = options
            self._reconnector.restart()
        self._wake.set()

    def stop(self) -> None:
        """Ask the thread to end (returns at once; ``join`` waits). Idempotent."""
        self._stop.set()
        self._wake.set()

    def join(self, timeout: float | None = None) -> bool:
        """Wait for the thread; True when it has ended."""
        if self._thread is None:
            return True
        self._thread.join(timeout)
        return not self._thread.is_alive()

    async def aclose(self) -> bool:
        """``stop`` then ``join`` (bounded by one open or read timeout) without blocking the loop."""
        self.stop()
        if self._thread is None or not self._thread.is_alive():
            return True
        # The thread may be inside an open (bounded by open_timeout) or a read (bounded by the read
        # timeout); it notices the stop as soon as that call returns.
        options = self.options
        return await asyncio.to_thread(
            self.join, max(options.open_timeout, options.blocking_read_timeout) + 2.0
        )

    # -- handing results to the loop ---------------------------------------------------------

    def _call(self, fn: Callable[..., None], *args: object) -> None:
        if not self._handoff.call(fn, *args):  # the loop has closed: nobody is listening any more
            self._stop.set()

    def _deliver(self, generation: int, packets: list[Packet]) -> None:
        # Runs on the loop. Packets of a session that a restart() made stale are dropped here.
        if generation != self._reconnector.generation or self._stop.is_set():
            return
        for packet in packets:
            self._on_packet(packet)

    def _publish(self, transition: Transition) -> None:
        stats = self.stats
        stats.state = transition.state
        stats.reason = transition.reason
        stats.reconnects = self._reconnector.reconnects
        stats.failures = self._reconnector.failures
        stats.retry_at = self._reconnector.retry_at
        if self._on_state is not None:
            self._call(self._on_state, transition)

    # -- the thread --------------------------------------------------------------------------

    def _run(self) -> None:
        rc = self._reconnector
        last_reason: Reason | None = None
        try:
            while not self._stop.is_set():
                self._wake.clear()
                with self._lock:
                    generation = rc.generation
                    url, login, options = self._url, self._login, self.options
                self._publish(rc.connecting())
                try:
                    self._session(generation, url, login, options)
                    error: IngestError | None = None
                except IngestError as exc:
                    error = exc
                except Exception as exc:  # anything PyAV raises outside classify's cases
                    error = classify(exc)
                self.stats.session_ended()
                if self._stop.is_set():
                    break
                if generation != rc.generation:
                    continue  # restarted with a new URL: connect again at once, no backoff
                if error is None:
                    error = IngestError(Reason.EOF, "the camera ended the stream")
                self.stats.on_error(error.reason, str(error))
                transition = rc.failed(error.reason)
                self._publish(transition)
                # A camera down for days must not flood the log: say it when a failure streak starts
                # or its cause changes, and keep the rest at debug level.
                level = logging.WARNING if rc.failures == 1 or error.reason != last_reason else logging.DEBUG
                last_reason = error.reason
                log.log(
                    level,
                    "%s: %s (%s); retrying in %.1f s",
                    self.name,
                    error.reason,
                    error,
                    transition.delay or 0,
                )
                self._wake.wait(transition.delay)
        finally:
            self._publish(rc.stop())

    def _session(self, generation: int, url: str, login: Login | None, options: SourceOptions) -> None:
        """One connection: open, demux until an error, a stall, EOF, stop or restart."""
        read_timeout = options.blocking_read_timeout
        try:
            target = target_url(url, login, options.policy, allow_files=options.allow_files)
        except UrlError as exc:
            raise IngestError(Reason.BLOCKED, f"refused before opening: {exc}") from None
        started = time.monotonic()
        try:
            container = av.open(
                target,
                options=open_options(target, options),
                # PyAV's read timeout (FFmpeg's interrupt callback) bounds each av_read_frame: a
                # camera that keeps the session alive with RTCP or keep-alive replies but sends no
                # video never trips the socket timeout, since bytes still arrive. It costs ~7 % of
                # passthrough CPU (the callback takes the GIL); a silent hang would cost the camera.
                timeout=(options.open_timeout, read_timeout),
            )
        except Exception as exc:
            timed_out = time.monotonic() - started >= options.open_timeout * 0.9
            raise classify(exc, timed_out=timed_out) from None
        assert isinstance(container, av.container.InputContainer)
        normalizer: Normalizer | None = None
        watchdog = Watchdog(options.stall_timeout)
        try:
            if not container.streams.video:
                raise UnsupportedCodec("the stream has no video")
            video = container.streams.video[0]
            normalizer = Normalizer(video, options.ceiling)
            self._set_info(normalizer)
            pace = _Pacer(self._stop) if options.realtime_files and _is_file(url) else None
            watchdog.reset()
            # The hot loop of passthrough: keep per-packet Python work to a few attribute reads.
            video_index = video.index
            stats = self.stats
            stop = self._stop
            reconnector = self._reconnector
            on_packet, in_thread = self._on_packet, self._packets_in_thread
            first = True
            for packet in container.demux():
                if stop.is_set() or generation != reconnector.generation:
                    return
                size = packet.size
                if packet.stream_index != video_index or size == 0:
                    # Audio and flush packets; a camera that keeps sending audio but no video is stalled.
                    if watchdog.expired():
                        raise IngestError(Reason.STALLED, f"no video for {options.stall_timeout:g} s")
                    continue
                if pace is not None:
                    pace.wait(packet)
                now = time.monotonic()
                watchdog.feed(now)
                keyframe = packet.is_keyframe
                stats.on_packet(size, keyframe, now)
                if first:
                    first = False
                    transition = reconnector.packet()
                    if transition is not None:
                        self._publish(transition)
                        log.info("%s: streaming (%s)", self.name, normalizer.mode)
                out = normalizer.push(packet, now)
                if keyframe or normalizer.mode == "transcode":
                    stats.drops = normalizer.drops + normalizer.transcoder_skipped
                    if normalizer.info != self.info:
                        self._set_info(normalizer)
                if out:
                    if not in_thread:
                        self._call(self._deliver, generation, out)
                    elif generation == reconnector.generation and not stop.is_set():
                        for item in out:
                            on_packet(item)
            # PyAV turns a read interrupted by its timeout into the end of demux: tell a stall from EOF.
            if watchdog.silent_for >= read_timeout * 0.9:
                streaming = self._reconnector.state is State.STREAMING
                reason = Reason.STALLED if streaming else Reason.TIMEOUT
                raise IngestError(reason, f"no data for {watchdog.silent_for:.1f} s")
            raise IngestError(Reason.EOF, "the camera ended the stream")
        except IngestError:
            raise
        except Exception as exc:
            timed_out = watchdog.silent_for >= read_timeout * 0.9
            raise classify(
                exc, timed_out=timed_out, streaming=self._reconnector.state is State.STREAMING
            ) from None
        finally:
            if normalizer is not None:
                normalizer.close()
            container.close()

    def _set_info(self, normalizer: Normalizer) -> None:
        info = normalizer.info
        self.info = info
        stats = self.stats
        stats.codec = info.source_codec
        stats.profile = info.source_profile
        stats.width = normalizer.source_width
        stats.height = normalizer.source_height
        stats.mode = info.mode
        if self._on_info is not None:
            self._call(self._on_info, info)


def _is_file(url: str) -> bool:
    scheme = urlsplit(url).scheme.lower()
    return scheme in ("file", "")


class _Pacer:
    """Holds a file source to its frame rate (a file demuxes as fast as the disk allows)."""

    def __init__(self, stop: threading.Event) -> None:
        self._stop = stop
        self._origin: tuple[float, float] | None = None

    def wait(self, packet: AvPacket) -> None:
        if packet.pts is None or packet.time_base is None:
            return
        media = float(packet.pts * packet.time_base)
        now = time.monotonic()
        if self._origin is None:
            self._origin = (now, media)
            return
        wall0, media0 = self._origin
        delay = (media - media0) - (now - wall0)
        if delay > 0:
            self._stop.wait(min(delay, 1.0))
