"""Stored camera passwords against a real ``videohub serve``: a URL change, a sub stream on another
host, credentials written into URL paths and queries, and the audit trail."""

from __future__ import annotations

import base64
import uuid
from collections.abc import Callable
from typing import Any

import pytest

from tests.fixtures.camsim import CameraSimulator
from tests.fixtures.service import VideohubService
from tests.security.doubles import RecordingServer, rtsp_401_basic
from tests.security.helpers import ingest_stream, wait_for

pytestmark = pytest.mark.media

ServiceFactory = Callable[..., VideohubService]


def leaked(received: bytes, user: str, password: str) -> bool:
    """Did the bytes carry the password, in clear or as a Basic/Digest answer?"""
    basic = base64.b64encode(f"{user}:{password}".encode())
    return password.encode() in received or basic in received or b"authorization" in received.lower()


def streaming(svc: VideohubService, camera_id: str, stream: str = "main") -> Callable[[], bool]:
    return lambda: (ingest_stream(svc, camera_id, stream) or {}).get("state") == "streaming"


def test_a_url_change_does_not_send_the_stored_password_to_the_new_host(
    videohub_service_factory: ServiceFactory, camsim: CameraSimulator
) -> None:
    svc = videohub_service_factory()
    token = svc.create_user("ga_thief", "line_admin", line="public_security")
    body = {
        "id": "ga-gate-1",
        "name": "派出所大门",
        "line": "public_security",
        "streams": {"main": {"url": camsim.auth_url("basic", credentials=False)}},
        "credentials": {"username": camsim.auth_user, "password": camsim.auth_password},
    }
    svc.call("POST", "/api/cameras", json=body, expect=201)  # registered by the admin
    assert wait_for(streaming(svc, "ga-gate-1"), 15)
    with RecordingServer(rtsp_401_basic) as evil:
        # The line admin points its own line's camera at a host it controls, and gives no password.
        svc.call(
            "PATCH",
            "/api/cameras/ga-gate-1",
            token=token,
            json={"streams": {"main": {"url": f"rtsp://127.0.0.1:{evil.port}/live"}}},
        )
        assert evil.wait_for(lambda s: s.connections >= 1, 10)
        assert wait_for(lambda: (ingest_stream(svc, "ga-gate-1") or {}).get("reason") == "auth_failed", 10)
        evil.wait_for(lambda s: s.connections >= 2, 3)  # one more round of retries
        assert not leaked(evil.received, camsim.auth_user, camsim.auth_password), evil.received[:400]
    cam = svc.call("GET", "/api/cameras/ga-gate-1", token=token)
    assert cam["has_credentials"] is False and cam["streams"]["main"]["has_credentials"] is False


def test_the_sub_stream_gets_no_credentials_given_for_another_host(
    videohub_service_factory: ServiceFactory, camsim: CameraSimulator
) -> None:
    svc = videohub_service_factory(env={"VIDEOHUB_INGEST__ALWAYS_ON_STREAMS": '["main", "sub"]'})
    creds = {"username": camsim.auth_user, "password": camsim.auth_password}
    with RecordingServer(rtsp_401_basic) as evil:
        svc.create_camera(
            "ga-split-1",
            camsim.auth_url("basic", credentials=False),
            sub_url=f"rtsp://127.0.0.1:{evil.port}/sub",
            credentials=creds,
        )
        # A sub stream on the main stream's host (same scheme, host and port) shares its credentials.
        svc.create_camera(
            "ga-same-1",
            camsim.auth_url("basic", credentials=False),
            sub_url=camsim.auth_url("digest", credentials=False),
            credentials=creds,
        )
        assert evil.wait_for(lambda s: s.connections >= 1, 10)
        assert wait_for(
            lambda: (ingest_stream(svc, "ga-split-1", "sub") or {}).get("reason") == "auth_failed", 10
        )
        evil.wait_for(lambda s: s.connections >= 2, 3)
        assert not leaked(evil.received, camsim.auth_user, camsim.auth_password), evil.received[:400]
        assert wait_for(streaming(svc, "ga-split-1", "main"), 15)
        assert wait_for(streaming(svc, "ga-same-1", "sub"), 15)
    split = svc.call("GET", "/api/cameras/ga-split-1")
    assert split["streams"]["main"]["has_credentials"] is True
    assert split["streams"]["sub"]["has_credentials"] is False


def test_credentials_in_url_paths_and_queries_are_put_back_only_at_open_time(
    videohub_service_factory: ServiceFactory, camsim: CameraSimulator
) -> None:
    secret = "S3cret"
    channel = uuid.uuid4().int % 10_000
    mount = f"user=admin&password={secret}&channel={channel}&stream=0.sdp"  # an XMEye-style DVR path
    camsim.add_mount(f"{mount}:fps=10,gop=1,profile=baseline")
    svc = videohub_service_factory()
    owner = svc.create_user("ga_dvr", "line_admin", line="public_security")
    other = svc.create_user("aj_other", "line_admin", line="safety")
    operator = svc.create_user("ops_dvr", "operator")
    maint = svc.create_user("maint_dvr", "maintenance")

    path_cam = svc.call(
        "POST",
        "/api/cameras",
        token=owner,
        json={
            "name": "硬盘录像机一号",
            "line": "public_security",
            "streams": {"main": {"url": f"{camsim.rtsp}/{mount}"}},
        },
        expect=201,
    )
    query_url = camsim.rtsp_url("cb", f"password={secret}&cam={channel}")
    query_cam = svc.call(
        "POST",
        "/api/cameras",
        token=owner,
        json={"name": "硬盘录像机二号", "line": "public_security", "streams": {"main": {"url": query_url}}},
        expect=201,
    )
    ids = [path_cam["id"], query_cam["id"]]
    assert path_cam["streams"]["main"]["url"].endswith(
        f"/user=***&password=***&channel={channel}&stream=0.sdp"
    )
    assert query_cam["streams"]["main"]["url"].endswith(f"/cb?password=***&cam={channel}")
    for camera_id in ids:  # the camera sees the URL as it was written, secret included
        assert wait_for(streaming(svc, camera_id), 15), ingest_stream(svc, camera_id)

    # An edit that sends back the redacted URL keeps the secret (same host); so does a rename.
    svc.call(
        "PATCH",
        f"/api/cameras/{ids[0]}",
        token=owner,
        json={"streams": {"main": {"url": path_cam["streams"]["main"]["url"]}}},
    )
    svc.call("PATCH", f"/api/cameras/{ids[1]}", token=owner, json={"name": "硬盘录像机二号（东）"})
    for camera_id in ids:
        assert wait_for(streaming(svc, camera_id), 15), ingest_stream(svc, camera_id)

    views = ["/api/cameras", "/api/lines"]
    for camera_id in ids:
        views += [
            f"/api/cameras/{camera_id}",
            f"/api/cameras/{camera_id}/ingest",
            f"/api/cameras/{camera_id}/health",
        ]
    for token in (None, owner, other, operator, maint):
        for path in views:
            response = svc.request("GET", path, token=token)
            assert secret not in response.text, (path, response.text[:300])
    audit = svc.request("GET", "/api/audit", params={"limit": 100})
    assert audit.status_code == 200 and secret not in audit.text
    assert "password=***" in audit.text
    metrics = svc.request("GET", "/metrics")  # as admin
    assert metrics.status_code == 200 and secret not in metrics.text
    log = svc.log_text()
    assert ids[0] in log or "ingest started" in log
    assert secret not in log


def test_audit_of_credential_changes_holds_no_secret(videohub_service_factory: ServiceFactory) -> None:
    svc = videohub_service_factory()
    secrets_given = ["Aud1t-pw-one", "Aud1t-pw-two", "Aud1t-tok-3"]
    body: dict[str, Any] = {
        "id": "ga-audit-1",
        "name": "审计",
        "line": "public_security",
        "streams": {"main": {"url": f"rtsp://admin:{secrets_given[0]}@127.0.0.1:9/live"}},
    }
    svc.call("POST", "/api/cameras", json=body, expect=201)
    svc.call(
        "PATCH",
        "/api/cameras/ga-audit-1",
        json={"credentials": {"username": "admin", "password": secrets_given[1]}},
    )
    svc.call(
        "PATCH",
        "/api/cameras/ga-audit-1",
        json={"streams": {"main": {"url": f"rtsp://127.0.0.1:9/live?token={secrets_given[2]}"}}},
    )
    audit = svc.call("GET", "/api/audit", params={"limit": 20})
    actions = [e["action"] for e in audit["items"] if e["target"] == "ga-audit-1"]
    assert actions == ["camera.update", "camera.update", "camera.create"]
    text = str(audit)
    for secret in secrets_given:
        assert secret not in text
    assert (
        svc.call("GET", "/api/cameras/ga-audit-1")["streams"]["main"]["url"]
        == "rtsp://127.0.0.1:9/live?token=***"
    )
