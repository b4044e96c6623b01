"""Why an ingest session ended, and the exceptions that carry it.

    IngestError              a session ended; ``reason`` says why (a ``Reason``)
    └── UnsupportedCodec     the stream has no video we can pass through or transcode

``classify`` maps PyAV/FFmpeg exceptions to a ``Reason``. Every message is redacted (URL userinfo
removed) before it leaves this module, because FFmpeg quotes the URL it was given.
"""

from __future__ import annotations

import errno
from enum import StrEnum

import av.error

from ingest.url import redact


class Reason(StrEnum):
    """The classified cause of a failed or ended session (shown in stats and the API)."""

    AUTH_FAILED = "auth_failed"
    NOT_FOUND = "not_found"
    REFUSED = "refused"
    UNREACHABLE = "unreachable"
    TIMEOUT = "timeout"
    STALLED = "stalled"
    UNSUPPORTED_CODEC = "unsupported_codec"
    BLOCKED = "blocked"
    """The URL was refused before opening (its form, the network policy, credentials of another host)."""
    EOF = "eof"
    ERROR = "error"
    """Anything else (corrupt data, a decoder failure); the message says more."""


class IngestError(Exception):
    """A session ended for ``reason``; ``str()`` is safe to log (no credentials)."""

    def __init__(self, reason: Reason, message: str) -> None:
        super().__init__(redact(message))
        self.reason = reason


class UnsupportedCodec(IngestError):
    def __init__(self, message: str) -> None:
        super().__init__(Reason.UNSUPPORTED_CODEC, message)


_UNREACHABLE = {errno.EHOSTUNREACH, errno.ENETUNREACH, errno.EHOSTDOWN, errno.ENETDOWN, errno.EADDRNOTAVAIL}
_TIMEOUT = {errno.ETIMEDOUT}


def classify(exc: BaseException, *, timed_out: bool = False, streaming: bool = False) -> IngestError:
    """The IngestError for an exception raised by PyAV while opening or reading.

    ``timed_out`` is set by the caller when the failing call lasted as long as its timeout: FFmpeg
    reports an interrupted RTSP handshake as "invalid data", so the duration is the better witness.
    ``streaming`` says packets were flowing; a read that times out then is a stall, not a timeout.
    """
    if isinstance(exc, IngestError):
        return exc
    message = f"{type(exc).__name__}: {exc}"
    if isinstance(exc, av.error.HTTPUnauthorizedError | av.error.HTTPForbiddenError):
        return IngestError(Reason.AUTH_FAILED, message)
    if isinstance(exc, av.error.HTTPNotFoundError | FileNotFoundError):
        return IngestError(Reason.NOT_FOUND, message)
    if isinstance(exc, ConnectionRefusedError):
        return IngestError(Reason.REFUSED, message)
    if isinstance(exc, av.error.EOFError | EOFError):
        return IngestError(Reason.EOF, message)
    if isinstance(exc, av.error.DecoderNotFoundError):
        return UnsupportedCodec(message)
    code = getattr(exc, "errno", None)
    if timed_out or isinstance(exc, av.error.ExitError | TimeoutError) or code in _TIMEOUT:
        return IngestError(Reason.STALLED if streaming else Reason.TIMEOUT, message)
    if code in _UNREACHABLE or (code == errno.EIO and not streaming):
        # FFmpeg's tcp protocol answers EIO when the host name does not resolve.
        return IngestError(Reason.UNREACHABLE, message)
    if isinstance(exc, ConnectionResetError | BrokenPipeError | ConnectionAbortedError):
        return IngestError(Reason.EOF, message)
    return IngestError(Reason.ERROR, message)
