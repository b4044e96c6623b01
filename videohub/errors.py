"""Errors the service raises on purpose; the API maps each to one HTTP status.

    VideohubError
    ├── Unauthorized        401  no token, a bad or expired token, wrong password
    ├── Forbidden           403  the caller's role or line may not do this
    ├── NotFound            404  unknown (or invisible to this caller) object
    ├── Conflict            409  an id that already exists
    ├── InvalidField        422  one field of a request is wrong (names the field)
    ├── RateLimited         429  too many attempts; retry_after seconds
    └── Unavailable         503  the thing exists but cannot serve now; retry_after seconds

A Redis outage (the client's ConnectionError, TimeoutError or socket OSError) answers as Unavailable
(503, see ``videohub.app``). Everything else is a bug and answers 500 without details.
"""

from __future__ import annotations


class VideohubError(Exception):
    status = 500

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class Unauthorized(VideohubError):
    status = 401


class Forbidden(VideohubError):
    status = 403


class NotFound(VideohubError):
    status = 404


class Conflict(VideohubError):
    status = 409


class InvalidField(VideohubError):
    """One field is wrong. ``loc`` is its path, as FastAPI's own 422s give it (e.g. body.streams.main.url)."""

    status = 422

    def __init__(self, loc: tuple[str | int, ...], message: str) -> None:
        super().__init__(message)
        self.loc = loc


class RateLimited(VideohubError):
    status = 429

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class Unavailable(VideohubError):
    status = 503

    def __init__(self, message: str, retry_after: int = 2) -> None:
        super().__init__(message)
        self.retry_after = retry_after
