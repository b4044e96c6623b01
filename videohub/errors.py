"""Errors the service raises on purpose; the API maps each to one HTTP status.

    VideohubError
    ├── InvalidOffer            400  a WHEP offer or trickle fragment that cannot be used
    ├── Unauthorized            401  no token, a bad or expired token, wrong password
    ├── Forbidden               403  the caller's role or line may not do this
    ├── NotFound                404  unknown (or invisible to this caller) object
    ├── Conflict                409  an id that already exists
    ├── StaleWall               412  the wall changed since the writer's version (If-Match)
    ├── InvalidField            422  one field of a request is wrong (names the field)
    ├── IceRestartUnsupported   422  a WHEP PATCH asked for an ICE restart
    ├── RateLimited             429  too many attempts; retry_after seconds
    └── Unavailable             503  the thing exists but cannot serve now; retry_after seconds
        └── NoPicture           503  no snapshot now; ``reason`` says why

A Redis outage (the client's ConnectionError, TimeoutError or socket OSError) answers as Unavailable
(503, see ``videohub.app``). Everything else is a bug and answers 500 without details.

The parts' own errors, handled where they are raised (never an HTTP answer by themselves):

    ConfigError             the configuration cannot be used (the CLI prints key path and reason)
    FeedClosed              a Feed ended, or its subscription was closed
    └── DeliveryFailed      a subscription's direct sink raised
    LiveFull                no room for another /ws socket (total or per user)

Errors of ingest (camera failures classified into reasons) are in ``ingest.errors``.
"""

from __future__ import annotations

from typing import Literal


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


class InvalidOffer(VideohubError):
    """The offer (or trickle fragment) cannot be used: unparsable, no video, nothing we can send."""

    status = 400


class StaleWall(VideohubError):
    """The wall changed since the version the writer based its change on (HTTP 412)."""

    status = 412

    def __init__(self, current: int) -> None:
        super().__init__(f"the wall changed meanwhile (now at version {current}); reload and retry")
        self.current = current


class IceRestartUnsupported(VideohubError):
    """A PATCH asked for an ICE restart, which aiortc cannot do (draft-ietf-wish-whep: 422)."""

    status = 422


class NoPicture(Unavailable):
    """The camera has no picture to show now; ``reason`` is machine-readable (a ingest Reason or
    ``disabled``, ``not_streaming``, ``undecodable``)."""

    def __init__(self, message: str, reason: str, retry_after: int = 2) -> None:
        super().__init__(message, retry_after)
        self.reason = reason


class ConfigError(Exception):
    """The configuration cannot be used; ``problems`` lists (key path, reason) pairs."""

    def __init__(self, source: str, problems: list[tuple[str, str]]) -> None:
        self.source = source
        self.problems = problems
        lines = "\n".join(f"  {path}: {reason}" for path, reason in problems)
        super().__init__(f"invalid configuration in {source}:\n{lines}")


class FeedClosed(Exception):
    """The feed ended (camera deleted or disabled, service stopping) or the subscription was closed."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class DeliveryFailed(FeedClosed):
    """The subscription's direct sink raised: the subscription ended, the feed goes on."""


class LiveFull(Exception):
    """No room for another socket: ``scope`` is "total" (this process) or "user"."""

    def __init__(self, scope: Literal["total", "user"]) -> None:
        super().__init__(scope)
        self.scope = scope


class NotOwner(Unavailable):
    """Another worker owns this camera stream (holds its lease): the request belongs there.

    ``owner`` is that worker's ``videohub.cluster.workers.WorkerInfo`` when it is alive (None while
    the lease moves); routing forwards the request to it.
    """

    def __init__(self, message: str, owner: object | None = None) -> None:
        super().__init__(message, retry_after=1)
        self.owner = owner
