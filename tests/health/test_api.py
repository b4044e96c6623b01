"""Health, alerts and metrics over HTTP: what each role sees and may do."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.apiclient import Api, api_session, camera_body
from tests.conftest import make_settings
from videohub.alerts.service import AlertService
from videohub.api.workers import worker_id
from videohub.services import Parts
from videohub.store import Store


@pytest.fixture
async def api(store: Store) -> AsyncIterator[Api]:
    # The monitor is not started (no ingest here): alerts are raised directly through the service.
    settings = make_settings(admin_password="admin-pass-123", health__enabled=False)
    async with api_session(settings, store, parts=Parts(health=True)) as session:
        for cam_id, line in (("ps1", "public_security"), ("sf1", "safety")):
            response = await session.client.post(
                "/api/cameras",
                json=camera_body(line, id=cam_id, mode="on_demand"),
                headers={"Authorization": f"Bearer {session.tokens['admin']}"},
            )
            assert response.status_code == 201, response.text
        yield session


def alerts_of(api: Api) -> AlertService:
    service = api.app.state.services.alerts
    assert isinstance(service, AlertService)
    return service


async def test_alert_list_by_role(api: Api) -> None:
    await alerts_of(api).reconcile("ps1", "public_security", {"offline": ["refused"]})
    await alerts_of(api).reconcile("sf1", "safety", {"degraded": ["black"]})
    seen = {}
    for who in ("admin", "operator", "maintenance", "ps_admin", "safety_admin"):
        response = await api.client.get("/api/alerts", headers=api.auth(who))
        assert response.status_code == 200, response.text
        seen[who] = sorted(a["camera"] for a in response.json()["items"])
    assert seen["admin"] == seen["operator"] == seen["maintenance"] == ["ps1", "sf1"]
    assert seen["ps_admin"] == ["ps1"]
    assert seen["safety_admin"] == ["sf1"]
    response = await api.client.get("/api/alerts?kind=degraded&state=open", headers=api.auth("operator"))
    assert [a["camera"] for a in response.json()["items"]] == ["sf1"]
    assert (await api.client.get("/api/alerts")).status_code == 401


async def test_ack_and_resolve_permissions(api: Api) -> None:
    (alert,) = await alerts_of(api).reconcile("ps1", "public_security", {"offline": ["timeout"]})
    for who in ("operator", "ps_admin"):
        response = await api.client.post(f"/api/alerts/{alert.id}/ack", headers=api.auth(who), json={})
        assert response.status_code == 403, (who, response.text)
    # Another line's admin does not learn the alert exists.
    response = await api.client.post(f"/api/alerts/{alert.id}/ack", headers=api.auth("safety_admin"))
    assert response.status_code == 404
    response = await api.client.post(
        f"/api/alerts/{alert.id}/ack", headers=api.auth("maintenance"), json={"note": "技术员已出发"}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["state"] == "acknowledged" and body["acked_by"] == "maintenance"
    assert body["ack_note"] == "技术员已出发"
    response = await api.client.post(f"/api/alerts/{alert.id}/resolve", headers=api.auth("admin"))
    assert response.status_code == 200 and response.json()["resolved_by"] == "admin"
    response = await api.client.post(f"/api/alerts/{alert.id}/resolve", headers=api.auth("maintenance"))
    assert response.status_code == 409
    response = await api.client.post("/api/alerts/nope/ack", headers=api.auth("maintenance"))
    assert response.status_code == 404
    audit = await api.client.get("/api/audit", headers=api.auth("admin"))
    if audit.status_code == 200:
        actions = [e["action"] for e in audit.json()["items"]]
        assert "alert.ack" in actions and "alert.resolve" in actions


async def test_health_endpoints_and_visibility(api: Api) -> None:
    response = await api.client.get("/api/health/cameras", headers=api.auth("maintenance"))
    assert response.status_code == 200
    rows = {r["camera"]: r for r in response.json()}
    assert set(rows) == {"ps1", "sf1"} and rows["ps1"]["state"] == "unknown"
    response = await api.client.get("/api/health/cameras", headers=api.auth("ps_admin"))
    assert [r["camera"] for r in response.json()] == ["ps1"]
    response = await api.client.get("/api/health/lines", headers=api.auth("operator"))
    lines = {r["line"]: r for r in response.json()}
    assert lines["public_security"]["cameras"] == 1
    assert set(lines["public_security"]["availability"]) == {"1h", "24h", "7d"}
    response = await api.client.get("/api/cameras/ps1/health", headers=api.auth("maintenance"))
    assert response.status_code == 200 and response.json()["camera"] == "ps1"
    response = await api.client.get("/api/cameras/ps1/health", headers=api.auth("safety_admin"))
    assert response.status_code == 404


async def test_metrics_parse_with_prometheus_parser(api: Api) -> None:
    await alerts_of(api).reconcile("ps1", "public_security", {"offline": ["refused"]})
    response = await api.client.get("/metrics", headers=api.auth("maintenance"))
    assert response.status_code == 200
    families = {f.name: f for f in text_string_to_metric_families(response.text)}
    assert "process_cpu_seconds" in families or "process_cpu_seconds_total" in families
    samples = [(s.labels, s.value) for s in families["videohub_alerts_open"].samples]
    worker = worker_id(api.app.state.services)
    assert samples == [({"line": "public_security", "kind": "offline", "worker": worker}, 1.0)]
