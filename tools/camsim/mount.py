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
    """A camera: owns its shared media factory and the state every media pipeline must follow.

    The factory is shared, so all clients of the mount watch one encoder (like a real camera). When
    the last client leaves, gst-rtsp-server drops the media and the next client gets a fresh pipeline;
    `_on_media_configure` re-applies the current pattern and stall state to it. Methods run on the
    GLib main loop thread only.
    """

    def __init__(self, spec: MountSpec) -> None:
        self.spec = spec
        self.pattern = spec.pattern
        self.stalled = False
        self.running = False
        self.medias: list[Any] = []
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
