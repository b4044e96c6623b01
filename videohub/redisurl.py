"""The one place a Redis client is built from ``redis_url``: a plain URL or a Sentinel one.

Plain URLs (``redis://``, ``rediss://``, ``unix://``) are redis-py's own. A highly available Redis
is named through its Sentinels, in the form that redis-sentinel-url, LangChain, RedisVL and Prefect
accept (redis-py itself has no URL for it)::

    redis+sentinel://[[user]:password@]host1[:26379][,host2[:port]...]/service_name[/db]
        [?sentinel_password=...&sentinel_username=...]

The user and password authenticate to the data nodes (primary and replicas); ``sentinel_password``
(and ``sentinel_username``) to the Sentinels, which often have none. A Sentinel's port defaults to
26379.

The client asks the Sentinels for the current primary (redis-py's ``SentinelConnectionPool``), so a
failover is followed without a restart: a connection to the old primary that answers READONLY or
refuses is dropped and the next one asks the Sentinels again. Transactions (MULTI/EXEC: users,
cameras, walls) then wait for one replica to acknowledge them (``WAIT 1 <ms>``), so a write the API
acknowledged survives the primary's death; see ``ReplicatedRedis``.

Errors here never carry a password: ``SentinelUrlError`` messages name the part that is wrong only.
"""

from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, unquote, urlsplit

import redis.asyncio as aioredis
from redis.asyncio.client import Pipeline
from redis.asyncio.connection import Connection
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel, SentinelConnectionPool
from redis.backoff import ExponentialWithJitterBackoff, NoBackoff
from redis.exceptions import RedisError

if TYPE_CHECKING:  # settings imports this module to check redis_url
    from videohub.settings.store import StoreSettings

log = logging.getLogger(__name__)

SENTINEL_SCHEME = "redis+sentinel"
PLAIN_SCHEMES = ("redis", "rediss", "unix")
DEFAULT_SENTINEL_PORT = 26379
SENTINEL_OPTIONS = frozenset({"sentinel_password", "sentinel_username"})


class SentinelUrlError(ValueError):
    """A ``redis+sentinel://`` URL that cannot be used; the message never repeats a password."""


@dataclass(frozen=True)
class SentinelUrl:
    """A parsed ``redis+sentinel://`` URL."""

    sentinels: tuple[tuple[str, int], ...]
    service: str
    db: int = 0
    username: str | None = None
    password: str | None = None
    sentinel_username: str | None = None
    sentinel_password: str | None = None


def is_sentinel_url(url: str) -> bool:
    return url.split(":", 1)[0].lower() == SENTINEL_SCHEME


def check_redis_url(url: str) -> None:
    """Raise ValueError (naming what is wrong, never the password) unless ``url`` can be used."""
    scheme = url.split(":", 1)[0].lower() if ":" in url else ""
    if scheme == SENTINEL_SCHEME:
        parse_sentinel_url(url)
    elif scheme not in PLAIN_SCHEMES or not url.lower().startswith(f"{scheme}://"):
        raise ValueError("must start with redis://, rediss://, unix:// or redis+sentinel://")


def parse_sentinel_url(url: str) -> SentinelUrl:
    if any(ord(ch) < 0x21 or ord(ch) == 0x7F for ch in url):
        raise SentinelUrlError("must not contain spaces or control characters")
    scheme, sep, rest = url.partition("://")
    if scheme.lower() != SENTINEL_SCHEME or not sep:
        raise SentinelUrlError("must start with redis+sentinel://")
    # urlsplit cannot read a host list (its port parsing stops at the comma), so split by hand.
    netloc, slash, tail = rest.partition("/")
    path, _, query = tail.partition("?")
    if "?" in netloc:
        netloc, _, query = netloc.partition("?")
    userinfo, at, hosts = netloc.rpartition("@")
    username = password = None
    if at:
        user, colon, secret = userinfo.partition(":")
        username = unquote(user) or None
        password = unquote(secret) if colon else None
    sentinels = tuple(_host_port(n, part) for n, part in enumerate(hosts.split(","), 1))
    if not slash or not path:
        raise SentinelUrlError("needs the Sentinel service name: redis+sentinel://host:26379/<service>")
    parts = path.strip("/").split("/")
    if len(parts) > 2:
        raise SentinelUrlError("the path is /<service>[/<db>]")
    service = unquote(parts[0])
    if not re.fullmatch(r"[A-Za-z0-9_.-]{1,128}", service):
        raise SentinelUrlError("the service name may hold letters, digits, '-', '_' and '.'")
    db = 0
    if len(parts) == 2:
        if not parts[1].isdigit() or int(parts[1]) > 10_000:
            raise SentinelUrlError("the db after the service name must be a number")
        db = int(parts[1])
    options = parse_qs(query, keep_blank_values=True, strict_parsing=False) if query else {}
    unknown = sorted(set(options) - SENTINEL_OPTIONS)
    if unknown:  # named only when it looks like an option name (a misplaced secret stays unsaid)
        name = unknown[0]
        shown = f" {name!r}" if re.fullmatch(r"[a-z_]{1,32}", name) else ""
        raise SentinelUrlError(f"unknown option{shown} (known: sentinel_password, sentinel_username)")
    return SentinelUrl(
        sentinels=sentinels,
        service=service,
        db=db,
        username=username,
        password=password,
        sentinel_username=options.get("sentinel_username", [None])[-1] or None,
        sentinel_password=options.get("sentinel_password", [None])[-1] or None,
    )


def _host_port(n: int, part: str) -> tuple[str, int]:
    # The part is never repeated in a message: a password with an unescaped "/" or "," lands here.
    if not part:
        raise SentinelUrlError("needs at least one Sentinel host, and no empty one between commas")
    split = urlsplit(f"//{part}")
    try:
        host, port = split.hostname, split.port
    except ValueError:
        raise SentinelUrlError(f"Sentinel address {n}: the port must be a number 1-65535") from None
    if not host or split.path or split.query or split.fragment or split.username is not None or port == 0:
        raise SentinelUrlError(
            f"Sentinel address {n} is not host[:port] (in a password, escape / @ , as %2F %40 %2C)"
        )
    return host, port or DEFAULT_SENTINEL_PORT


class ReplicatedPipeline(Pipeline):  # type: ignore[misc]  # redis is untyped for mypy here
    """A pipeline whose MULTI/EXEC is followed by ``WAIT 1 <ms>`` on the same connection.

    WAIT counts the replicas that have this connection's writes, so it must run on the connection
    that sent them, before it goes back to the pool: hence here, not after ``execute()``.
    """

    waiter: ReplicaWait

    async def _execute_transaction(
        self, connection: Connection, commands: Any, raise_on_error: bool
    ) -> list[Any]:
        result: list[Any] = await super()._execute_transaction(connection, commands, raise_on_error)
        await self.waiter.wait(connection)
        return result


class ReplicaWait:
    """Waits for one replica after a transaction, unless the last wait found none.

    With no replica attached (a lone primary after a failover, until the old one rejoins), every
    WAIT would cost its whole timeout; after one that timed out, transactions skip WAIT for
    ``pause`` seconds and one warning says writes are on the primary only until a replica returns.
    """

    def __init__(self, timeout_ms: int, pause: float = 5.0) -> None:
        self.timeout_ms = timeout_ms
        self.pause = pause
        self._skip_until = 0.0
        self._alone = False
        self.waits = 0
        self.unreplicated = 0

    async def wait(self, connection: Connection) -> None:
        if self.timeout_ms <= 0 or time.monotonic() < self._skip_until:
            if self.timeout_ms > 0:
                self.unreplicated += 1
            return
        await connection.send_command("WAIT", 1, self.timeout_ms)
        acked = await connection.read_response()
        self.waits += 1
        if isinstance(acked, int) and acked >= 1:
            if self._alone:
                log.info("redis: a replica acknowledges writes again")
            self._alone = False
            return
        self.unreplicated += 1
        self._skip_until = time.monotonic() + self.pause
        if not self._alone:
            log.warning(
                "redis: no replica acknowledged a write within %d ms; writes are on the primary only "
                "until one does",
                self.timeout_ms,
            )
        self._alone = True


class ReplicatedRedis(aioredis.Redis):  # type: ignore[misc]
    """A client whose transactions wait for one replica (``ReplicaWait``)."""

    def __init__(self, pool: aioredis.ConnectionPool, waiter: ReplicaWait) -> None:
        super().__init__(connection_pool=pool)
        self.auto_close_connection_pool = True  # the client owns its pool, as Redis.from_pool's do
        self.waiter = waiter

    def pipeline(self, transaction: bool = True, shard_hint: str | None = None) -> Pipeline:
        pipe = ReplicatedPipeline(self.connection_pool, self.response_callbacks, transaction, shard_hint)
        pipe.waiter = self.waiter
        return pipe


class BlockingSentinelConnectionPool(SentinelConnectionPool, aioredis.BlockingConnectionPool):  # type: ignore[misc]
    """The Sentinel pool with the plain URL's bounded size and blocking wait for a free connection."""

    replicas: tuple[tuple[str, int], ...] = ()
    """The replicas the Sentinels named at start (``discover_replicas``), for ``store_addresses``."""


async def discover_replicas(redis: aioredis.Redis) -> None:
    """Remember the replicas the Sentinels know now, so camera URLs cannot point at them either."""
    pool = redis.connection_pool
    if isinstance(pool, BlockingSentinelConnectionPool):
        try:
            found = await pool.sentinel_manager.discover_slaves(pool.service_name)
        except (RedisError, OSError):
            return
        pool.replicas = tuple((str(host), int(port)) for host, port in found)


def _retry() -> Retry:
    # One quick retry covers a connection that broke since its last use; a real outage fails within
    # a second (503) instead of redis-py's default ten retries.
    return Retry(ExponentialWithJitterBackoff(base=0.05, cap=0.5), 1)


def open_client(url: str, settings: StoreSettings) -> aioredis.Redis:
    """The service's Redis client for ``url``: a bounded blocking pool, timeouts, one retry."""
    common: dict[str, Any] = {
        "max_connections": settings.max_connections,
        "timeout": settings.pool_timeout_seconds,
        "decode_responses": True,
        "socket_timeout": settings.socket_timeout_seconds,
        "socket_connect_timeout": settings.connect_timeout_seconds,
        "retry": _retry(),
    }
    if not is_sentinel_url(url):
        return aioredis.Redis.from_pool(aioredis.BlockingConnectionPool.from_url(url, **common))
    parsed = parse_sentinel_url(url)
    sentinel = Sentinel(
        parsed.sentinels,
        sentinel_kwargs={
            "username": parsed.sentinel_username,
            "password": parsed.sentinel_password,
            "socket_timeout": settings.connect_timeout_seconds,
            "socket_connect_timeout": settings.connect_timeout_seconds,
            "decode_responses": True,
            "retry": Retry(NoBackoff(), 0),
        },
    )
    pool = BlockingSentinelConnectionPool(
        parsed.service,
        sentinel,
        db=parsed.db,
        username=parsed.username,
        password=parsed.password,
        **common,
    )
    return ReplicatedRedis(pool, ReplicaWait(settings.replica_wait_ms))


def dedicated_client(redis: aioredis.Redis) -> aioredis.Redis:
    """A client like ``redis`` with its own pool of two connections and no retries (pub/sub)."""
    pool = redis.connection_pool
    kwargs = {k: v for k, v in pool.connection_kwargs.items() if k != "connection_pool"}
    kwargs["retry"] = Retry(NoBackoff(), 0)
    if isinstance(pool, SentinelConnectionPool):
        own: aioredis.ConnectionPool = SentinelConnectionPool(
            pool.service_name, pool.sentinel_manager, max_connections=2, **kwargs
        )
    else:
        own = aioredis.ConnectionPool(connection_class=pool.connection_class, max_connections=2, **kwargs)
    return aioredis.Redis.from_pool(own)


async def close_client(redis: aioredis.Redis) -> None:
    """Close the client and, for a Sentinel one, its connections to the Sentinels."""
    pool = redis.connection_pool
    try:
        await redis.aclose()
    finally:
        if isinstance(pool, SentinelConnectionPool):
            sentinel = pool.sentinel_manager
            if isinstance(sentinel, Sentinel):
                try:
                    await sentinel.aclose()
                except (RedisError, OSError):
                    pass


def store_addresses(redis: aioredis.Redis) -> list[tuple[str, int]]:
    """The TCP addresses of the store: the Sentinels, the primary known now and the replicas known at
    start; none on a unix socket."""
    pool = redis.connection_pool
    found: list[tuple[str, int]] = []
    if isinstance(pool, SentinelConnectionPool):
        sentinel = pool.sentinel_manager
        if isinstance(sentinel, Sentinel):
            for node in sentinel.sentinels:
                found.append(_address(node.connection_pool.connection_kwargs))
        if pool.master_address is not None:
            host, port = pool.master_address
            found.append((str(host), int(port)))
        found.extend(getattr(pool, "replicas", ()))
        return [a for a in found if a[0]]
    address = _address(pool.connection_kwargs)
    return [address] if address[0] else []


def _address(kwargs: dict[str, Any]) -> tuple[str, int]:
    host, port = kwargs.get("host"), kwargs.get("port")
    if isinstance(host, str) and isinstance(port, int) and "path" not in kwargs:
        return host, port
    return "", 0
