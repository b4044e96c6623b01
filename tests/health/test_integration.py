"""Feed health end to end: camera simulator → ingest → Feed hub → health monitor → alerts → API."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.alerts.recorder import WebhookRecorder
from tests.apiclient import camera_body, login
from tests.conftest import make_settings
from tests.fixtures.camsim import CameraSimulator
from videohub.api import alerts, health, metrics
from videohub.app import build_app
from videohub.services import Parts
from videohub.settings import Settings
from videohub.store import Store

pytestmark = pytest.mark.media

ADMIN = {"username": "admin", "password": "admin-pass-123"}


def fast_settings(**extra: Any) -> Settings:
    return make_settings(
        admin_password=ADMIN["password"],
        health={
            "tick_seconds": 0.25,
            "diagnosis_interval_seconds": 1.0,
            "degraded_hold_seconds": 1.0,
            "recover_hold_seconds": 1.0,
        },
        **extra,
    )


class Service:
    """The app with the Feed hub and health running, and an admin client."""

    def __init__(self, settings: Settings, store: Store) -> None:
        self.app = build_app(settings, store=store, parts=Parts(hub=True, health=True))
        paths = {getattr(route, "path", None) for route in self.app.routes}
        if "/metrics" not in paths:  # until app.py includes these routers
            for module in (health, alerts, metrics):
                self.app.include_router(module.router)
        self.client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=self.app), base_url="http://videohub.test"
        )
        self._lifespan = self.app.router.lifespan_context(self.app)
        self.headers: dict[str, str] = {}

    async def __aenter__(self) -> Service:
        await self._lifespan.__aenter__()
        token = await login(self.client, ADMIN["username"], ADMIN["password"])
        self.headers = {"Authorization": f"Bearer {token}"}
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.client.aclose()
        await self._lifespan.__aexit__(None, None, None)

    async def add_camera(self, cam_id: str, url: str) -> None:
        body = camera_body("public_security", id=cam_id, mode="always_on", streams={"main": {"url": url}})
        response = await self.client.post("/api/cameras", json=body, headers=self.headers)
        assert response.status_code == 201, response.text

    async def alerts(self, camera: str) -> list[dict[str, Any]]:
        response = await self.client.get(f"/api/alerts?camera={camera}", headers=self.headers)
        assert response.status_code == 200, response.text
        items: list[dict[str, Any]] = response.json()["items"]
        return items

    async def state(self, camera: str) -> dict[str, Any]:
        response = await self.client.get(f"/api/cameras/{camera}/health", headers=self.headers)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body


async def until(check: Callable[[], Awaitable[bool]], within: float = 30.0) -> None:
    deadline = asyncio.get_running_loop().time() + within
    while not await check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"condition not met within {within} s")
        await asyncio.sleep(0.25)


@pytest.fixture
async def service(store: Store) -> AsyncIterator[Service]:
    async with Service(fast_settings(), store) as svc:
        yield svc


async def test_stopped_camera_raises_exactly_one_offline_alert_and_resolves_it(
    service: Service, camsim: CameraSimulator
) -> None:
    mount = await asyncio.to_thread(camsim.fresh_mount)
    await service.add_camera("gate", camsim.rtsp_url(mount))

    async def online() -> bool:
        return bool((await service.state("gate"))["state"] == "online")

    await until(online)
    await asyncio.to_thread(camsim.stop_mount, mount)

    async def offline_alert() -> bool:
        return any(a["kind"] == "offline" and a["state"] == "open" for a in await service.alerts("gate"))

    await until(offline_alert)
    await asyncio.sleep(4)  # reconnect attempts keep failing meanwhile
    assert [a["kind"] for a in await service.alerts("gate")] == ["offline"]
    assert (await service.state("gate"))["state"] == "offline"
    await asyncio.to_thread(camsim.start_mount, mount)

    async def resolved() -> bool:
        return all(a["state"] == "resolved" for a in await service.alerts("gate"))

    await until(resolved)
    (alert,) = await service.alerts("gate")
    assert alert["kind"] == "offline" and alert["resolved_by"] == "auto"
    assert (await service.state("gate"))["state"] == "online"
    transitions = [t["new"] for t in reversed((await service.state("gate"))["transitions"])]
    assert transitions[:3] == ["online", "offline", "online"]

    async def metrics_show_it_streaming() -> bool:
        text = (await service.client.get("/metrics", headers=service.headers)).text
        families = {f.name: f for f in text_string_to_metric_families(text)}
        states = {
            s.labels["state"]: s.value
            for s in families["videohub_camera_state"].samples
            if s.labels["camera"] == "gate" and s.labels["line"] == "public_security"
        }
        fps = [s.value for s in families["videohub_camera_fps"].samples if s.labels["camera"] == "gate"]
        return states["online"] == 1.0 and states["offline"] == 0.0 and fps[0] > 0

    await until(metrics_show_it_streaming, within=10)


async def test_black_and_frozen_mounts_are_degraded_with_their_reason(
    service: Service, camsim: CameraSimulator
) -> None:
    black = await asyncio.to_thread(camsim.fresh_mount, "pattern=black")
    frozen = await asyncio.to_thread(camsim.fresh_mount, "pattern=frozen")
    await service.add_camera("dark", camsim.rtsp_url(black))
    await service.add_camera("stuck", camsim.rtsp_url(frozen))

    async def degraded() -> bool:
        found = {}
        for cam in ("dark", "stuck"):
            found[cam] = [
                (a["kind"], a["reasons"]) for a in await service.alerts(cam) if a["state"] == "open"
            ]
        return found == {"dark": [("degraded", ["black"])], "stuck": [("degraded", ["frozen"])]}

    await until(degraded, within=40)
    detail = await service.state("stuck")
    assert detail["state"] == "degraded" and detail["reasons"] == ["frozen"]
    checks = {c["name"]: c for c in detail["diagnosis"]["checks"]}
    assert checks["frozen"]["failed"] and checks["frozen"]["value"] is not None


async def test_webhook_gets_every_alert_after_outage_and_service_restart(
    store: Store, camsim: CameraSimulator
) -> None:
    receiver = WebhookRecorder()  # down: nothing listens on its port yet
    hook = {"name": "ops", "url": receiver.url, "secret": "k", "lines": ["public_security"]}
    settings = fast_settings(
        alerts={
            "webhooks": [hook],
            "webhook_backoff_initial_seconds": 0.1,
            "webhook_backoff_max_seconds": 0.5,
        }
    )
    mount = await asyncio.to_thread(camsim.fresh_mount)
    async with Service(settings, store) as first:
        await first.add_camera("pump", camsim.rtsp_url(mount))
        await until(lambda: _is(first, "pump", "online"))
        await asyncio.to_thread(camsim.stop_mount, mount)

        async def opened() -> bool:
            return any(a["state"] == "open" for a in await first.alerts("pump"))

        await until(opened)
        await asyncio.sleep(1.0)  # delivery attempts fail: the receiver is down
    await asyncio.to_thread(camsim.start_mount, mount)
    await receiver.start()
    try:
        async with Service(settings, store) as second:

            async def resolved() -> bool:
                return ("resolved", "pump", "offline") in receiver.events()

            await until(resolved, within=40)
            assert second.app is not None
        assert receiver.events()[0] == ("opened", "pump", "offline")
        assert [e for e in receiver.events() if e[0] == "opened"] == [("opened", "pump", "offline")]
    finally:
        await receiver.stop()


async def _is(service: Service, camera: str, state: str) -> bool:
    return bool((await service.state(camera))["state"] == state)
