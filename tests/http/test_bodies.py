"""Per-route body limits through the whole app (in process): which limit applies, and what a client sees."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.apiclient import Api
from videohub.http.bodies import body_limit_for
from videohub.settings.http import HttpLimitSettings

KIB, MIB = 1024, 1024 * 1024


@pytest.mark.parametrize(
    ("method", "path", "limit"),
    [
        ("POST", "/whep/cam-1", 64 * KIB),
        ("PATCH", "/whep/sessions/abc", 64 * KIB),
        ("POST", "/api/cameras/import", 5 * MIB),
        ("PUT", "/api/cameras/import", 1 * MIB),  # only the import's POST takes CSV
        ("POST", "/api/cameras", 1 * MIB),
        ("PUT", "/api/walls/main", 1 * MIB),
        ("POST", "/api/auth/login", 16 * KIB),
        ("POST", "/api/auth/refresh", 16 * KIB),
        ("POST", "/", 16 * KIB),
        ("POST", "/metrics", 16 * KIB),
    ],
)
def test_each_route_has_its_limit(method: str, path: str, limit: int) -> None:
    assert body_limit_for(method, path, HttpLimitSettings()).max_bytes == limit


def detail_msg(response_json: dict[str, list[dict[str, object]]]) -> str:
    detail = response_json["detail"][0]
    assert detail["loc"] == ["body"] and detail["type"] == "too_large"
    return str(detail["msg"])


async def test_login_body_over_16_kib_is_413_before_any_password_check(api: Api) -> None:
    response = await api.client.post(
        "/api/auth/login", content=b"{" + b" " * (16 * KIB), headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 413
    assert "16 KiB" in detail_msg(response.json())
    assert response.headers["connection"] == "close"


async def test_streamed_json_over_1_mib_is_413_while_it_is_read(api: Api) -> None:
    sent = 0

    async def body() -> AsyncIterator[bytes]:
        nonlocal sent
        for _ in range(64):  # 4 MiB offered, chunked (no Content-Length)
            sent += 64 * KIB
            yield b" " * (64 * KIB)

    response = await api.client.post(
        "/api/cameras", content=body(), headers={**api.auth("admin"), "Content-Type": "application/json"}
    )
    assert response.status_code == 413, response.text
    assert "1 MiB" in detail_msg(response.json())
    assert sent <= 1 * MIB + 128 * KIB  # reading stopped at the limit


async def test_csv_import_takes_up_to_5_mib(api: Api) -> None:
    headers = {**api.auth("admin"), "Content-Type": "text/csv"}
    # Exactly at the limit the body reaches the import, which judges it (not UTF-8: 422 on the body).
    at_limit = await api.client.post("/api/cameras/import", content=b"\xff" * (5 * MIB), headers=headers)
    assert at_limit.status_code == 422, at_limit.text
    over = await api.client.post("/api/cameras/import", content=b"\xff" * (5 * MIB + 1), headers=headers)
    assert over.status_code == 413
    assert "5 MiB" in detail_msg(over.json())


async def test_sdp_over_64_kib_is_413(api: Api) -> None:
    headers = {**api.auth("operator"), "Content-Type": "application/sdp"}
    response = await api.client.post(
        "/whep/any-camera", content=b"v=0\r\n" + b"a" * (64 * KIB), headers=headers
    )
    assert response.status_code == 413
    assert "64 KiB" in detail_msg(response.json())


async def test_a_response_before_the_body_was_read_closes_the_connection(api: Api) -> None:
    # No token: 401 without reading the CSV; the server must not go on reading and discarding it.
    response = await api.client.post("/api/cameras/import", content=b"a,b\n" * 1000)
    assert response.status_code == 401
    assert response.headers["connection"] == "close"
    # A request without a body keeps its connection.
    assert "connection" not in (await api.client.get("/api/auth/me", headers=api.auth("admin"))).headers
