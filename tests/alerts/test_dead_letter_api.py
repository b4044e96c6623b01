"""The parked-events API: maintenance and admin list, re-send and delete what a webhook refused.

The app with its alert service on a real Valkey; webhook receivers are real HTTP servers
(``WebhookRecorder``). Alerts are raised through the alert service, as the health monitor does.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
from collections.abc import AsyncIterator
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.alerts.recorder import WebhookRecorder
from tests.apiclient import Api, api_session
from tests.conftest import make_settings
from videohub.alerts.service import AlertService
from videohub.services import Parts
from videohub.store import Store

SECRET = "hook-secret-1"
TOKEN = "tok3n-in-the-url"


@pytest.fixture
async def receiver() -> AsyncIterator[WebhookRecorder]:
    rec = WebhookRecorder(status=500)
    await rec.start()
    try:
        yield rec
    finally:
        await rec.stop()


@pytest.fixture
async def api(store: Store, receiver: WebhookRecorder) -> AsyncIterator[Api]:
    # Chat-robot webhooks carry their token in the URL: it must show nowhere.
    hook = {"name": "ops", "url": f"{receiver.url}?access_token={TOKEN}", "secret": SECRET}
    settings = make_settings(
        admin_password="admin-pass-123",
        alerts={
            "webhooks": [hook],
            "webhook_backoff_initial_seconds": 0.05,
            "webhook_backoff_max_seconds": 0.1,
            "webhook_max_attempts": 2,
        },
        health={"enabled": False},
    )
    async with api_session(settings, store, parts=Parts(health=True)) as session:
        yield session


def alerts_of(api: Api) -> AlertService:
    service = api.app.state.services.alerts
    assert isinstance(service, AlertService)
    return service


async def parked(api: Api, count: int, who: str = "maintenance") -> dict[str, Any]:
    """GET /api/alerts/dead once ``count`` events are parked."""
    deadline = asyncio.get_running_loop().time() + 20
    while True:
        response = await api.client.get("/api/alerts/dead", headers=api.auth(who))
        assert response.status_code == 200, response.text
        assert TOKEN not in response.text
        body: dict[str, Any] = response.json()
        if body["counts"] == {"ops": count}:
            return body
        assert asyncio.get_running_loop().time() < deadline, f"parked: {body['counts']}"
        await asyncio.sleep(0.1)


async def test_parked_events_are_listed_resent_and_deleted_by_maintenance(
    api: Api, receiver: WebhookRecorder
) -> None:
    service = alerts_of(api)
    for cam in ("cam1", "cam2", "cam3"):
        await service.reconcile(cam, "public_security", {"offline": ["timeout"]})
    page = await parked(api, 3)
    items = page["items"]
    assert [i["alert"]["camera"] for i in items] == ["cam3", "cam2", "cam1"]  # newest first
    first = items[-1]
    assert (first["hook"], first["event"], first["attempts"]) == ("ops", "opened", 2)
    assert (first["last_error"], first["last_status"]) == ("HTTP 500", 500)
    assert first["parked_at"] and first["delivery"] != first["id"]

    metrics = (await api.client.get("/metrics", headers=api.auth("admin"))).text
    families = {f.name: f for f in text_string_to_metric_families(metrics)}
    assert [(s.labels["webhook"], s.value) for s in families["videohub_webhook_parked"].samples] == [
        ("ops", 3.0)
    ]

    # Still broken: the re-send is refused, the event stays parked with one more attempt counted.
    response = await api.client.post(
        f"/api/alerts/dead/ops/{first['id']}/resend", headers=api.auth("maintenance")
    )
    assert response.status_code == 200, response.text
    result = response.json()
    assert (result["resent"], result["remaining"]) == (0, 3)
    assert result["failed"]["attempts"] == 3 and result["failed"]["delivery"] == first["delivery"]
    again = result["failed"]["id"]

    # Fixed: the re-send arrives, signed, with the event's own delivery id, and leaves the stream.
    receiver.status = 200
    response = await api.client.post(f"/api/alerts/dead/ops/{again}/resend", headers=api.auth("admin"))
    assert response.json() == {"resent": 1, "failed": None, "remaining": 2}
    (got,) = receiver.received
    assert got.headers["x-videohub-delivery"] == first["delivery"]
    expected = "sha256=" + hmac.new(SECRET.encode(), got.body, hashlib.sha256).hexdigest()
    assert got.headers["x-videohub-signature"] == expected
    assert (got.json()["event"], got.json()["alert"]["camera"]) == ("opened", "cam1")

    # Deleted: never sent. Re-send all: the rest arrive, oldest first.
    response = await api.client.delete(
        f"/api/alerts/dead/ops/{items[1]['id']}", headers=api.auth("maintenance")
    )
    assert response.status_code == 204
    response = await api.client.post("/api/alerts/dead/ops/resend-all", headers=api.auth("maintenance"))
    assert response.json() == {"resent": 1, "failed": None, "remaining": 0}
    assert [e[1] for e in receiver.events()] == ["cam1", "cam3"]
    assert (await parked(api, 0))["items"] == []

    audit = (await api.client.get("/api/audit?limit=10", headers=api.auth("admin"))).json()["items"]
    entries = [e for e in reversed(audit) if e["action"].startswith("webhook")]
    actions = [(e["actor"], e["action"], e["target"]) for e in entries]
    assert actions == [
        ("maintenance", "webhook.resend", f"ops/{first['id']}"),
        ("admin", "webhook.resend", f"ops/{again}"),
        ("maintenance", "webhook.delete_parked", f"ops/{items[1]['id']}"),
        ("maintenance", "webhook.resend_all", "ops"),
    ]
    assert entries[0]["before"]["camera"] == "cam1" and entries[0]["after"] == {
        "resent": 0,
        "last_error": "HTTP 500",
    }
    assert TOKEN not in str(audit)


async def test_resend_all_stops_at_the_first_refusal(api: Api, receiver: WebhookRecorder) -> None:
    service = alerts_of(api)
    for cam in ("cam1", "cam2", "cam3"):
        await service.reconcile(cam, "public_security", {"offline": ["timeout"]})
    await parked(api, 3)
    before = receiver.requests
    response = await api.client.post("/api/alerts/dead/ops/resend-all", headers=api.auth("maintenance"))
    result = response.json()
    assert (result["resent"], result["remaining"]) == (0, 3)
    assert result["failed"]["alert"]["camera"] == "cam1"  # the oldest, tried first
    assert receiver.requests == before + 1


@pytest.mark.parametrize("who", ["operator", "ps_admin"])
async def test_only_maintenance_and_admin_see_or_touch_parked_events(
    api: Api, receiver: WebhookRecorder, who: str
) -> None:
    await alerts_of(api).reconcile("cam1", "public_security", {"offline": ["timeout"]})
    entry = (await parked(api, 1))["items"][0]["id"]
    calls = [
        ("GET", "/api/alerts/dead"),
        ("POST", f"/api/alerts/dead/ops/{entry}/resend"),
        ("POST", "/api/alerts/dead/ops/resend-all"),
        ("DELETE", f"/api/alerts/dead/ops/{entry}"),
    ]
    for method, path in calls:
        response = await api.client.request(method, path, headers=api.auth(who))
        assert response.status_code == 403, (method, path, response.text)
    assert receiver.requests == 2  # the two delivery attempts; no re-send went out
    assert (await parked(api, 1))["items"][0]["id"] == entry


async def test_bad_or_unknown_parked_ids_and_hooks(api: Api) -> None:
    auth = api.auth("maintenance")
    response = await api.client.post("/api/alerts/dead/ops/1-0%0d%0aX/resend", headers=auth)
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["path", "entry_id"]
    assert (await api.client.post("/api/alerts/dead/ops/1-0/resend", headers=auth)).status_code == 404
    assert (await api.client.delete("/api/alerts/dead/ops/1-0", headers=auth)).status_code == 404
    assert (await api.client.post("/api/alerts/dead/nope/resend-all", headers=auth)).status_code == 404
    assert (await api.client.get("/api/alerts/dead?hook=nope", headers=auth)).status_code == 404
