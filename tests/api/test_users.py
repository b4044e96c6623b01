"""Users, login, tokens and the login rate limit."""

from __future__ import annotations

from tests.apiclient import PASSWORD, Api, login


async def test_login_returns_an_expiring_bearer_token(api: Api) -> None:
    response = await api.client.post("/api/auth/login", json={"username": "operator", "password": PASSWORD})
    body = response.json()
    assert response.status_code == 200
    assert body["token_type"] == "bearer" and len(body["access_token"]) >= 32
    assert body["expires_at"] and body["user"] == {
        "username": "operator",
        "role": "operator",
        "line": None,
        "created_at": body["user"]["created_at"],
    }
    me = await api.client.get("/api/auth/me", headers={"Authorization": f"Bearer {body['access_token']}"})
    assert me.json()["username"] == "operator"


async def test_tokens_and_passwords_are_stored_hashed(api: Api) -> None:
    redis = api.app.state.services.store.redis
    everything = []
    async for name in redis.scan_iter("*"):
        kind = await redis.type(name)
        if kind == "string":
            everything.append(await redis.get(name))
        elif kind == "hash":
            everything.extend((await redis.hgetall(name)).values())
        elif kind == "set":
            everything.extend(await redis.smembers(name))
    names = [name async for name in redis.scan_iter("*")]
    blob = "\n".join(str(v) for v in everything + names)
    assert PASSWORD not in blob
    for token in api.tokens.values():
        assert token not in blob


async def test_logout_revokes_the_token(api: Api) -> None:
    token = await login(api.client, "maintenance", PASSWORD)
    headers = {"Authorization": f"Bearer {token}"}
    assert (await api.client.post("/api/auth/logout", headers=headers)).status_code == 204
    assert (await api.client.get("/api/auth/me", headers=headers)).status_code == 401


async def test_wrong_password_then_rate_limit(api: Api) -> None:
    for _ in range(5):
        bad = await api.client.post(
            "/api/auth/login", json={"username": "operator", "password": "wrong-pw-1"}
        )
        assert bad.status_code == 401
    blocked = await api.client.post("/api/auth/login", json={"username": "operator", "password": PASSWORD})
    assert blocked.status_code == 429 and int(blocked.headers["retry-after"]) > 0
    # The wait is this user's from this address: another user at the same desk still logs in (the
    # address has a ceiling of its own, 20 failures; see tests/security/test_login_throttle.py).
    other = await api.client.post("/api/auth/login", json={"username": "maintenance", "password": PASSWORD})
    assert other.status_code == 200


async def test_unknown_user_is_401_like_a_wrong_password(api: Api) -> None:
    response = await api.client.post("/api/auth/login", json={"username": "ghost", "password": "whatever-1"})
    assert response.status_code == 401 and response.json()["detail"] == "wrong username or password"


async def test_user_lifecycle_and_revocation(api: Api) -> None:
    admin = api.auth("admin")
    created = await api.client.post(
        "/api/users",
        json={
            "username": "env_admin",
            "password": "env-pass-123",
            "role": "line_admin",
            "line": "environment",
        },
        headers=admin,
    )
    assert created.status_code == 201 and created.json()["line"] == "environment"
    assert "password" not in created.text and "env-pass-123" not in created.text
    token = await login(api.client, "env_admin", "env-pass-123")
    listing = (await api.client.get("/api/users", headers=admin)).json()
    assert {"env_admin", "admin", "operator"} <= {u["username"] for u in listing}
    assert "env-pass-123" not in str(listing)

    changed = await api.client.put(
        "/api/users/env_admin/password", json={"password": "new-pass-456"}, headers=admin
    )
    assert changed.status_code == 204
    assert (
        await api.client.get("/api/auth/me", headers={"Authorization": f"Bearer {token}"})
    ).status_code == 401
    token = await login(api.client, "env_admin", "new-pass-456")

    assert (await api.client.delete("/api/users/env_admin", headers=admin)).status_code == 204
    assert (
        await api.client.get("/api/auth/me", headers={"Authorization": f"Bearer {token}"})
    ).status_code == 401
    assert (await api.client.delete("/api/users/env_admin", headers=admin)).status_code == 404


async def test_user_validation_names_the_field(api: Api) -> None:
    admin = api.auth("admin")
    cases = [
        ({"username": "x1", "password": "short", "role": "operator"}, "password"),
        ({"username": "la", "password": "long-enough-1", "role": "line_admin"}, "line"),
        ({"username": "la", "password": "long-enough-1", "role": "line_admin", "line": "traffic"}, "line"),
        ({"username": "op", "password": "long-enough-1", "role": "operator", "line": "safety"}, "line"),
        ({"username": "op", "password": "long-enough-1", "role": "superuser"}, "role"),
        ({"username": "bad name", "password": "long-enough-1", "role": "operator"}, "username"),
    ]
    for body, field in cases:
        response = await api.client.post("/api/users", json=body, headers=admin)
        assert response.status_code == 422, (body, response.text)
        assert field in response.json()["detail"][0]["loc"], (body, response.text)
        assert "short" not in response.text and "long-enough-1" not in response.text
    dup = await api.client.post(
        "/api/users",
        json={"username": "operator", "password": "long-enough-1", "role": "operator"},
        headers=admin,
    )
    assert dup.status_code == 409


async def test_refresh_gives_a_new_token_and_ends_the_old_one_after_a_grace(api: Api) -> None:
    old = await login(api.client, "operator", PASSWORD)
    headers = {"Authorization": f"Bearer {old}"}
    response = await api.client.post("/api/auth/refresh", headers=headers)
    assert response.status_code == 200, response.text
    body = response.json()
    new = body["access_token"]
    assert new != old and body["user"]["username"] == "operator" and body["expires_at"]
    me = await api.client.get("/api/auth/me", headers={"Authorization": f"Bearer {new}"})
    assert me.json()["username"] == "operator"
    # The old token still works for the grace minute (a WebSocket or request in flight), then ends.
    assert (await api.client.get("/api/auth/me", headers=headers)).status_code == 200
    redis = api.app.state.services.store.redis
    ttls = [await redis.ttl(name) async for name in redis.scan_iter("vh:token:*")]
    assert sorted(ttls)[0] <= 60
    # A token that is gone cannot be refreshed.
    await api.client.post("/api/auth/logout", headers={"Authorization": f"Bearer {new}"})
    refused = await api.client.post("/api/auth/refresh", headers={"Authorization": f"Bearer {new}"})
    assert refused.status_code == 401
