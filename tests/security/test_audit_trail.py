"""The audit trail: logins (with the caller's address), failed logins, refreshes, logouts and user
changes are recorded without secrets; it is kept by age, so churn cannot push recent entries out;
and an entry that cannot be written fails the request instead of vanishing."""

from __future__ import annotations

import time
from collections.abc import Callable

from prometheus_client.parser import text_string_to_metric_families

from tests.apiclient import PASSWORD, Api
from tests.fixtures.service import USER_PASSWORD, VideohubService
from tests.security.auth_support import audit, client_from

DAY_MS = 86_400_000


def test_logins_refreshes_logouts_and_user_changes_are_audited(
    videohub_service_factory: Callable[..., VideohubService],
) -> None:
    svc = videohub_service_factory()
    svc.create_user("zhao", "operator")
    with client_from(svc, "127.0.0.2") as client:
        assert (
            client.post("/api/auth/login", json={"username": "zhao", "password": "wrong-pw-1"}).status_code
            == 401
        )
        assert (
            client.post("/api/auth/login", json={"username": "nobody", "password": "wrong-pw-2"}).status_code
            == 401
        )
        ok = client.post("/api/auth/login", json={"username": "zhao", "password": USER_PASSWORD})
        assert ok.status_code == 200
        token = ok.json()["access_token"]
        renewed = client.post("/api/auth/refresh", headers={"Authorization": f"Bearer {token}"})
        assert renewed.status_code == 200
        new = renewed.json()["access_token"]
        assert client.post("/api/auth/logout", headers={"Authorization": f"Bearer {new}"}).status_code == 204
    svc.call("PUT", "/api/users/zhao/password", json={"password": "changed-pass-2"}, expect=204)
    svc.call("DELETE", "/api/users/zhao", expect=204)

    failed = audit(svc, "auth.login_failed")
    assert [(e["target"], e["after"]["address"]) for e in failed] == [
        ("nobody", "127.0.0.2"),
        ("zhao", "127.0.0.2"),
    ]
    # create_user logged zhao in once from 127.0.0.1; the client did from 127.0.0.2.
    logins = [e["after"]["address"] for e in audit(svc, "auth.login") if e["actor"] == "zhao"]
    assert logins == ["127.0.0.2", "127.0.0.1"]
    assert [e["actor"] for e in audit(svc, "auth.refresh")] == ["zhao"]
    assert [e["actor"] for e in audit(svc, "auth.logout")] == ["zhao"]
    for action, target in (("user.create", "zhao"), ("user.password", "zhao"), ("user.delete", "zhao")):
        entries = audit(svc, action)
        assert [e["target"] for e in entries if e["target"] == target] == [target], action
        assert entries[0]["actor"] == "admin"
    everything = svc.request("GET", "/api/audit", params={"limit": 500}).text
    for secret in ("wrong-pw-1", "wrong-pw-2", USER_PASSWORD, "changed-pass-2", token, new):
        assert secret not in everything


async def test_audit_is_kept_by_age_not_by_count(api: Api) -> None:
    redis = api.app.state.services.store.redis
    now_ms = int(time.time() * 1000)
    await redis.delete("vh:audit")
    fields = {
        "ts": "0",
        "actor": "admin",
        "action": "camera.create",
        "target": "old",
        "before": "",
        "after": "",
    }
    await redis.xadd("vh:audit", {**fields, "target": "ancient"}, id=f"{now_ms - 200 * DAY_MS}-0")
    await redis.xadd("vh:audit", {**fields, "target": "recent"}, id=f"{now_ms - 170 * DAY_MS}-0")
    svc = api.app.state.services
    # Many viewing sessions end: the trail grows, the recent registry entry stays.
    for n in range(2000):
        await svc.audit.record("operator", "whep.session", f"cam-{n}", None, {"n": n})
    created = await api.client.post(
        "/api/users",
        json={"username": "li", "password": PASSWORD, "role": "operator"},
        headers=api.auth("admin"),
    )
    assert created.status_code == 201
    targets = {entry["target"] for _, entry in await redis.xrange("vh:audit")}
    assert "ancient" not in targets, "an entry older than the 180-day retention is kept"
    assert "recent" in targets and "li" in targets and "cam-0" in targets


async def test_an_audit_entry_that_cannot_be_written_fails_the_request(api: Api) -> None:
    redis = api.app.state.services.store.redis
    await redis.delete("vh:audit")
    await redis.set("vh:audit", "not a stream")  # every XADD now fails, as on a broken store
    try:
        created = await api.client.post(
            "/api/users",
            json={"username": "wu", "password": PASSWORD, "role": "operator"},
            headers=api.auth("admin"),
        )
        assert created.status_code == 503 and created.headers["retry-after"], created.text
        assert "audit" in created.json()["detail"]
        login = await api.client.post("/api/auth/login", json={"username": "operator", "password": PASSWORD})
        assert login.status_code == 503 and "access_token" not in login.text
        metrics = await api.client.get("/metrics", headers=api.auth("admin"))
        samples = {s.name: s.value for f in text_string_to_metric_families(metrics.text) for s in f.samples}
        assert samples["videohub_audit_write_failures_total"] == 2
    finally:
        await redis.delete("vh:audit")
