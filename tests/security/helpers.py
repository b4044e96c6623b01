"""Shared steps of the security tests: the service's own store address, polling, raw store writes."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import redis

from tests.fixtures.service import VideohubService


def wait_for(check: Callable[[], bool], within: float) -> bool:
    """Poll ``check`` until it holds or ``within`` seconds pass; returns its last answer."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.2)
    return check()


def store_url(svc: VideohubService) -> str:
    """The embedded Valkey's URL, as the service writes it to ``<data_dir>/valkey/url``."""
    return (svc.data_dir / "valkey" / "url").read_text(encoding="utf-8").strip()


def store_port(svc: VideohubService) -> int | None:
    """The embedded Valkey's TCP port (None when it listens on a unix socket)."""
    parts = urlsplit(store_url(svc))
    return parts.port if parts.scheme in ("redis", "rediss") else None


def store_client(svc: VideohubService) -> redis.Redis:
    client: redis.Redis = redis.Redis.from_url(store_url(svc), decode_responses=True)
    return client


def ingest_stream(
    svc: VideohubService, camera_id: str, stream: str = "main", token: str | None = None
) -> Any:
    data = svc.call("GET", f"/api/cameras/{camera_id}/ingest", token=token)
    return next((s for s in data["streams"] if s["stream"] == stream), None)


def write_camera_record(client: redis.Redis, camera_id: str, line: str, url: str) -> None:
    """Put a camera straight into the store, past the API (as a bug or an old version might)."""
    now = datetime.now(UTC).isoformat()
    record: dict[str, Any] = {
        "id": camera_id,
        "name": camera_id,
        "line": line,
        "area": "",
        "location": None,
        "streams": {"main": {"url": url, "transport": "tcp"}, "sub": None},
        "mode": "always_on",
        "enabled": True,
        "tags": [],
        "vendor": None,
        "model": None,
        "has_credentials": False,
        "created_at": now,
        "updated_at": now,
    }
    pipe = client.pipeline(transaction=True)
    pipe.set(f"vh:cam:{camera_id}", json.dumps(record))
    pipe.hset("vh:cams:index", camera_id, json.dumps([line, "", True, camera_id, "always_on"]))
    pipe.incr("vh:cams:version")
    pipe.publish("vh:registry", json.dumps({"op": "put", "id": camera_id}))
    pipe.execute()
