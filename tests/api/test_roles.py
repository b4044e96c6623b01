"""The role × action matrix of the registry, users and audit APIs, against a real Valkey."""

from __future__ import annotations

import pytest

from tests.apiclient import Api, camera_body

ROLES = ("admin", "operator", "maintenance", "ps_admin", "safety_admin")


async def seed(api: Api) -> None:
    for cam_id, line in (("ps-1", "public_security"), ("sa-1", "safety"), ("env-1", "environment")):
        response = await api.client.post(
            "/api/cameras", json=camera_body(id=cam_id, line=line), headers=api.auth("admin")
        )
        assert response.status_code == 201


@pytest.mark.parametrize(
    ("who", "visible"),
    [
        ("admin", {"ps-1", "sa-1", "env-1"}),
        ("operator", {"ps-1", "sa-1", "env-1"}),
        ("maintenance", {"ps-1", "sa-1", "env-1"}),
        ("ps_admin", {"ps-1"}),
        ("safety_admin", {"sa-1"}),
    ],
)
async def test_who_sees_which_cameras(api: Api, who: str, visible: set[str]) -> None:
    await seed(api)
    listing = await api.client.get("/api/cameras", headers=api.auth(who))
    assert {c["id"] for c in listing.json()["items"]} == visible
    assert listing.json()["total"] == len(visible)
    for cam_id in ("ps-1", "sa-1", "env-1"):
        response = await api.client.get(f"/api/cameras/{cam_id}", headers=api.auth(who))
        assert response.status_code == (200 if cam_id in visible else 404)
    # Filtering by another line does not reveal it either.
    other = await api.client.get("/api/cameras", params={"line": "environment"}, headers=api.auth(who))
    assert {c["id"] for c in other.json()["items"]} == visible & {"env-1"}


@pytest.mark.parametrize(
    ("who", "line", "status"),
    [
        ("admin", "environment", 201),
        ("ps_admin", "public_security", 201),
        ("ps_admin", "safety", 403),
        ("safety_admin", "safety", 201),
        ("operator", "public_security", 403),
        ("maintenance", "public_security", 403),
    ],
)
async def test_who_may_register(api: Api, who: str, line: str, status: int) -> None:
    response = await api.client.post("/api/cameras", json=camera_body(line=line), headers=api.auth(who))
    assert response.status_code == status, response.text
    total = (await api.client.get("/api/cameras", headers=api.auth("admin"))).json()["total"]
    assert total == (1 if status == 201 else 0)


@pytest.mark.parametrize(
    ("who", "cam_id", "status"),
    [
        ("admin", "sa-1", 200),
        ("ps_admin", "ps-1", 200),
        ("ps_admin", "sa-1", 404),
        ("operator", "ps-1", 403),
        ("maintenance", "ps-1", 403),
    ],
)
async def test_who_may_edit_and_delete(api: Api, who: str, cam_id: str, status: int) -> None:
    await seed(api)
    patch = await api.client.patch(f"/api/cameras/{cam_id}", json={"area": "改"}, headers=api.auth(who))
    assert patch.status_code == status, patch.text
    delete = await api.client.delete(f"/api/cameras/{cam_id}", headers=api.auth(who))
    assert delete.status_code == (204 if status == 200 else status)
    still = await api.client.get(f"/api/cameras/{cam_id}", headers=api.auth("admin"))
    assert still.status_code == (404 if status == 200 else 200)
    if status != 200:
        assert still.json()["area"] == "梅里镇"


async def test_line_admin_cannot_move_a_camera_to_another_line(api: Api) -> None:
    await seed(api)
    response = await api.client.patch(
        "/api/cameras/ps-1", json={"line": "safety"}, headers=api.auth("ps_admin")
    )
    assert response.status_code == 403
    assert (await api.client.get("/api/cameras/ps-1", headers=api.auth("admin"))).json()[
        "line"
    ] == "public_security"


@pytest.mark.parametrize("who", ROLES)
async def test_users_and_audit_are_admin_only(api: Api, who: str) -> None:
    expected = 200 if who == "admin" else 403
    assert (await api.client.get("/api/users", headers=api.auth(who))).status_code == expected
    assert (await api.client.get("/api/audit", headers=api.auth(who))).status_code == expected
    create = await api.client.post(
        "/api/users",
        json={"username": f"new-{who}", "password": "long-enough-1", "role": "operator"},
        headers=api.auth(who),
    )
    assert create.status_code == (201 if who == "admin" else 403)


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/cameras"),
        ("POST", "/api/cameras"),
        ("GET", "/api/cameras/ps-1"),
        ("PATCH", "/api/cameras/ps-1"),
        ("DELETE", "/api/cameras/ps-1"),
        ("POST", "/api/cameras/import"),
        ("GET", "/api/lines"),
        ("GET", "/api/users"),
        ("GET", "/api/audit"),
        ("GET", "/api/auth/me"),
    ],
)
async def test_no_or_bad_token_is_401(api: Api, method: str, path: str) -> None:
    for headers in ({}, {"Authorization": "Bearer not-a-token"}, {"Authorization": "Basic YTpi"}):
        response = await api.client.request(method, path, headers=headers, json={})
        assert response.status_code == 401, (method, path, headers, response.text)
        assert response.headers["www-authenticate"] == "Bearer"
