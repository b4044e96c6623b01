"""One simulated camera stream (an RTSP mount) and its live state."""

from __future__ import annotations

from typing import Any

import gi

gi.require_version("GstRtspServer", "1.0")
from gi.repository import GstRtspServer  # noqa: E402

from camsim import auth, pipeline  # noqa: E402
from camsim.spec import MountSpec  # noqa: E402


class _SharedFactory(GstRtspServer.RTSPMediaFactory):  # type: ignore[misc]
    """A factory whose shared media ignores the URL's query string.

    The default cache key includes the query, so `/cb?cam=1` and `/cb?cam=2` would each start their
    own encoder. Keyed by path only, distinct camera URLs share one encoder, like one real camera
    registered under several names.
    """

    def do_gen_key(self, url: Any) -> str:
        return str(url.abspath)


class Mount:
    """A camera: owns its shared media factory, the media it holds, and the state every pipeline follows.

    The factory is shared, so all clients of the mount watch one encoder (like a real camera). While
    the mount runs, the simulator itself holds that media prepared from its first DESCRIBE on
    (`hold`), so clients coming and going never tear it down: it plays until the mount stops, and
    only its `idle` valve (in front of the encoder) closes while nobody watches (`sleep`, `wake`).
    Without the hold, gst-rtsp-server unprepared the media when its last client left and built a
    new one for the next, and under rapid connect/close (a probe cycle: hundreds of sessions a
    second on one mount) the server aborted; see `CameraServer` for the Range part of that.
    `_on_media_configure` applies the current pattern and stall state to every new pipeline.
    Methods run on the GLib main loop thread only.
    """

    def __init__(self, spec: MountSpec) -> None:
        self.spec = spec
        self.pattern = spec.pattern
        self.stalled = False
        self.running = False
        self.medias: list[Any] = []
        self.held: Any = None
        self.idle = False
        """Whether the held media's idle valve is closed (no client)."""
        """The media this mount keeps prepared while it runs (None while stopped)."""
        self.factory = _SharedFactory()
        self.factory.set_launch(pipeline.launch_line(spec))
        self.factory.set_shared(True)
        # A live camera cannot seek. With this clock mode gst-rtsp-server counts the media as not
        # seekable and ignores the Range FFmpeg sends with every PLAY; otherwise it answered the
        # Range with a flushing seek of the shared pipeline, and a PLAY of another client before
        # the next buffer found no segment on the RTP sink and the server aborted
        # (gst_rtsp_media_get_rates: assertion failed, 1.22: a burst of 8 FFmpeg-like sessions on
        # a fresh mount was enough), and a mount whose pipeline could not preroll again answered 5XX.
        self.factory.set_publish_clock_mode(GstRtspServer.RTSPPublishClockMode.CLOCK_AND_OFFSET)
        self.factory.connect("media-configure", self._on_media_configure)
        if spec.auth != "none":
            auth.grant_access(self.factory)

    @property
    def path(self) -> str:
        return "/" + self.spec.name

    def _on_media_configure(self, _factory: Any, media: Any) -> None:
        self.medias.append(media)
        media.connect("unprepared", self._on_unprepared)
        element = media.get_element()
        pipeline.apply_pattern(element, self.spec, self.pattern)
        if self.stalled:
            pipeline.set_stalled(element, True)

    def _on_unprepared(self, media: Any) -> None:
        if media in self.medias:
            self.medias.remove(media)

    def hold(self, media: Any, server: Any) -> None:
        """Keep `media` (this mount's shared media, which a client has just asked for) prepared
        until `release`.

        The media's prepare count is what gst-rtsp-server uses to tell whether anyone still needs
        it; ours keeps it above zero, so clients leaving (even one that only asked DESCRIBE) never
        unprepare it. Taken at the first DESCRIBE, not at start: the client's own prepare has
        just built it, as before; a media prepared long before its first client gave that client
        no video within a short stream analysis (the audio mount, ffprobe at 0.3 s).
        """
        if self.held is not None or media not in self.medias:
            return
        thread = server.get_thread_pool().get_thread(
            GstRtspServer.RTSPThreadType.MEDIA, GstRtspServer.RTSPContext()
        )
        if media.prepare(thread):
            self.held = media
            self.idle = False

    def wake(self) -> None:
        """A client plays the held media: feed the encoder again, starting with a keyframe."""
        if self.held is not None and self.idle:
            self.idle = False
            pipeline.set_idle(self.held.get_element(), False)

    def sleep(self) -> None:
        """Nobody watches: stop feeding the encoder (the pipeline keeps playing)."""
        if self.held is not None and not self.idle:
            self.idle = True
            pipeline.set_idle(self.held.get_element(), True)

    def release(self) -> None:
        """Drop the hold: the media is unprepared once its last client (if any) has left too."""
        media, self.held = self.held, None
        if media is not None:
            media.unprepare()

    def set_pattern(self, pattern: str) -> None:
        self.pattern = pattern
        for media in self.medias:
            pipeline.apply_pattern(media.get_element(), self.spec, pattern)

    def set_stalled(self, stalled: bool) -> None:
        self.stalled = stalled
        for media in self.medias:
            pipeline.set_stalled(media.get_element(), stalled)

    def describe(self, url: str) -> dict[str, Any]:
        d = self.spec.describe()
        d.update(
            url=url,
            state="running" if self.running else "stopped",
            stalled=self.stalled,
            pattern=self.pattern,
            active=bool(self.medias),
            medias=len(self.medias),  # 1 while watched: every client shares one encoder
        )
        return d
