"""Error classification and credential redaction."""

from __future__ import annotations

import errno

import av.error

from ingest.errors import Reason, classify
from ingest.url import redact, with_credentials


def ffmpeg_error(cls: type[av.error.FFmpegError], code: int, message: str) -> av.error.FFmpegError:
    return cls(code, message, "rtsp://admin:s3cret@127.0.0.1:8554/cam")


def test_ffmpeg_errors_map_to_reasons() -> None:
    cases = [
        (ffmpeg_error(av.error.HTTPUnauthorizedError, -825242872, "401"), Reason.AUTH_FAILED),
        (ffmpeg_error(av.error.HTTPNotFoundError, -875574520, "404"), Reason.NOT_FOUND),
        (ffmpeg_error(av.error.ConnectionRefusedError, errno.ECONNREFUSED, "refused"), Reason.REFUSED),
        (ffmpeg_error(av.error.OSError, errno.EHOSTUNREACH, "no route"), Reason.UNREACHABLE),
        (ffmpeg_error(av.error.ExitError, -1414092869, "exit"), Reason.TIMEOUT),
        (ffmpeg_error(av.error.EOFError, -541478725, "eof"), Reason.EOF),
    ]
    for exc, reason in cases:
        assert classify(exc).reason is reason, exc


def test_a_timed_out_handshake_is_a_timeout_and_a_silent_stream_a_stall() -> None:
    exc = ffmpeg_error(av.error.InvalidDataError, -1094995529, "Invalid data")
    assert classify(exc).reason is Reason.ERROR
    assert classify(exc, timed_out=True).reason is Reason.TIMEOUT
    assert classify(exc, timed_out=True, streaming=True).reason is Reason.STALLED


def test_error_messages_never_carry_the_password() -> None:
    exc = ffmpeg_error(av.error.HTTPUnauthorizedError, -825242872, "Server returned 401")
    message = str(classify(exc))
    assert "s3cret" not in message and "admin" not in message
    assert "rtsp://127.0.0.1:8554/cam" in message


def test_credentials_are_injected_encoded_and_redacted() -> None:
    url = with_credentials("rtsp://10.0.0.5:554/Streaming/101?x=1", "op@line", "p:w/d%")
    assert url == "rtsp://op%40line:p%3Aw%2Fd%25@10.0.0.5:554/Streaming/101?x=1"
    assert redact(f"failed to open '{url}'") == "failed to open 'rtsp://10.0.0.5:554/Streaming/101?x=1'"
    assert with_credentials("rtsp://h/x", None, None) == "rtsp://h/x"
