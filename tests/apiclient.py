"""Test-side helpers for talking to the app: a client with a token per role, a camera body."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
from fastapi import FastAPI

from videohub.app import build_app
from videohub.services import Parts
from videohub.settings import Settings
from videohub.store import Store

PASSWORD = "correct-horse-1"
ADMIN_PASSWORD = "admin-pass-123"


@dataclass
class Api:
    """An HTTP client on the app plus a bearer token per role, for the role × action tests."""

    client: httpx.AsyncClient
    tokens: dict[str, str]
    app: FastAPI

    def auth(self, who: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[who]}"}


async def login(client: httpx.AsyncClient, username: str, password: str) -> str:
    response = await client.post("/api/auth/login", json={"username": username, "password": password})
    assert response.status_code == 200, response.text
    token: str = response.json()["access_token"]
    return token


USERS = {
    "operator": {"role": "operator"},
    "maintenance": {"role": "maintenance"},
    "ps_admin": {"role": "line_admin", "line": "public_security"},
    "safety_admin": {"role": "line_admin", "line": "safety"},
}


async def start_api(
    settings: Settings, store: Store, parts: Parts | None = None
) -> tuple[FastAPI, httpx.AsyncClient, Any]:
    app = build_app(settings, store=store, parts=parts if parts is not None else Parts())
    lifespan = app.router.lifespan_context(app)
    await lifespan.__aenter__()
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://videohub.test")
    return app, client, lifespan


@asynccontextmanager
async def api_session(settings: Settings, store: Store, parts: Parts | None = None) -> AsyncIterator[Api]:
    """The app on ``store`` with the admin plus one logged-in user per role (see USERS)."""
    app, client, lifespan = await start_api(settings, store, parts)
    try:
        tokens = {"admin": await login(client, "admin", ADMIN_PASSWORD)}
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


def camera_body(line: str = "public_security", **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": "梅里镇派出所门口",
        "line": line,
        "area": "梅里镇",
        "streams": {"main": {"url": "rtsp://192.0.2.10:554/live/main"}},
    }
    body.update(extra)
    return body
