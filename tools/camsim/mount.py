"""One simulated camera stream (an RTSP mount) and its live state."""

from __future__ import annotations

from typing import Any

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtsp", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import Gst, GstRtsp, GstRtspServer  # noqa: E402

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
    the mount runs, the simulator itself holds that media prepared (`hold`), so clients coming and
    going never prepare or tear it down. Without the hold, gst-rtsp-server unprepared the media when
    its last client left and built a new one for the next; under rapid connect/close (a probe cycle:
    hundreds of sessions a second on one mount, each PLAY with a Range as FFmpeg sends it) a PLAY
    met a media in the middle of that and the server aborted (`gst_rtsp_media_get_rates: assertion
    failed`, gst-rtsp-server 1.22; a burst of 8 bare RTSP sessions was enough), and a mount stopped
    and started a few times answered 5XX. A held media that was played keeps encoding when its
    last client leaves, so the server renews idle ones (`CameraServer._renew_idle`): an unwatched
    mount costs no CPU. `_on_media_configure` applies the current pattern and stall state to every
    new pipeline. Methods run on the GLib main loop thread only.
    """

    def __init__(self, spec: MountSpec) -> None:
        self.spec = spec
        self.pattern = spec.pattern
        self.stalled = False
        self.running = False
        self.medias: list[Any] = []
        self.held: Any = None
        self.played = False
        """Whether a client has played the held media (its encoder then runs until renewed)."""
        """The media this mount keeps prepared while it runs (None while stopped)."""
        self.factory = _SharedFactory()
        self.factory.set_launch(pipeline.launch_line(spec))
        self.factory.set_shared(True)
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

    def hold(self, server: Any) -> None:
        """Build (or join) the mount's shared media and keep it prepared until `release`.

        The media's prepare count is what gst-rtsp-server uses to tell whether anyone still needs
        the media; ours keeps it above zero, so clients leaving never unprepare it.
        """
        if self.held is not None:
            return
        _result, url = GstRtsp.RTSPUrl.parse(f"rtsp://127.0.0.1{self.path}")
        media = self.factory.construct(url)
        if media is None:
            raise RuntimeError(f"mount {self.spec.name}: no media")
        thread = server.get_thread_pool().get_thread(
            GstRtspServer.RTSPThreadType.MEDIA, GstRtspServer.RTSPContext()
        )
        if not media.prepare(thread):
            raise RuntimeError(f"mount {self.spec.name}: media did not prepare")
        media.connect("new-state", self._on_new_state)
        self.held = media
        self.played = False

    def _on_new_state(self, _media: Any, state: int) -> None:
        if state == Gst.State.PLAYING:
            self.played = True

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
