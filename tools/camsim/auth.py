"""RTSP authentication for the auth port: Basic or Digest chosen per mount.

gst-rtsp-server's `RTSPAuth` offers one set of methods for a whole server. A real camera offers one
scheme, and clients such as FFmpeg pick Digest whenever it is offered, so a "basic" mount would never
be exercised with Basic. This subclass narrows the offered methods to the requested mount's scheme
before each check; all checks run on the server's main-loop thread, one request at a time.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import gi

gi.require_version("GstRtsp", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GstRtsp, GstRtspServer  # noqa: E402

ROLE = "camsim-user"


class PerMountAuth(GstRtspServer.RTSPAuth):  # type: ignore[misc]
    """Auth object of the auth-port server; `scheme_of(mount_name)` returns "basic" or "digest"."""

    def __init__(self, user: str, password: str, scheme_of: Callable[[str], str]) -> None:
        super().__init__()
        self._scheme_of = scheme_of
        token = GstRtspServer.RTSPToken()
        token.set_string("media.factory.role", ROLE)
        self.add_basic(GstRtspServer.RTSPAuth.make_basic(user, password), token)
        self.add_digest(user, password, token)
        self.set_supported_methods(GstRtsp.RTSPAuthMethod.DIGEST)

    def do_check(self, ctx: Any, check: str) -> bool:
        path = ctx.uri.abspath if ctx.uri is not None and ctx.uri.abspath else "/"
        mount = path.strip("/").split("/", 1)[0]
        method = (
            GstRtsp.RTSPAuthMethod.BASIC
            if self._scheme_of(mount) == "basic"
            else GstRtsp.RTSPAuthMethod.DIGEST
        )
        self.set_supported_methods(method)
        return bool(GstRtspServer.RTSPAuth.do_check(self, ctx, check))


def grant_access(factory: Any) -> None:
    """Let authenticated users of the auth port see and construct `factory`'s media."""
    factory.add_role_from_structure(
        _structure(f"{ROLE}, media.factory.access=(boolean)true, media.factory.construct=(boolean)true")
    )


def _structure(text: str) -> Any:
    from gi.repository import Gst

    result = Gst.Structure.from_string(text)
    # PyGObject returns (structure, end) for this API on some versions.
    return result[0] if isinstance(result, tuple) else result
