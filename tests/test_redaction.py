"""Camera passwords never reach a user: every view of a camera with credentials, on the real service."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from tests.fixtures.camsim import CameraSimulator
from tests.fixtures.service import VideohubService

pytestmark = pytest.mark.media

WRONG = "Wr0ng-Pass-7c1"


def wait_for(check: Callable[[], bool], within: float, what: str) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.3)
    raise AssertionError(f"not within {within} s: {what}")


def test_passwords_absent_from_every_view_and_the_log(
    videohub_service: VideohubService, camsim: CameraSimulator
) -> None:
    svc = videohub_service
    right = camsim.auth_password
    # Wrong credentials written inside the URL: split off at registration, then rejected by the camera.
    host_url = camsim.auth_url("digest", credentials=False)
    bad_url = host_url.replace("rtsp://", f"rtsp://{camsim.auth_user}:{WRONG}@")
    svc.create_camera("red-auth", bad_url, line="safety")
    maint = svc.create_user("red_maint", "maintenance")
    ops = svc.create_user("red_ops", "operator")
    line_admin = svc.create_user("red_safety", "line_admin", line="safety")

    def ingest_reason() -> str | None:
        streams = svc.call("GET", "/api/cameras/red-auth/ingest")["streams"]
        return next((s.get("reason") for s in streams if s["stream"] == "main"), None)

    wait_for(lambda: ingest_reason() == "auth_failed", 15, "auth_failed")
    wait_for(
        lambda: any(a["camera"] == "red-auth" for a in svc.call("GET", "/api/alerts")["items"]),
        20,
        "an alert",
    )
    # Then the right password, set through the API: the camera streams.
    svc.call(
        "PATCH",
        "/api/cameras/red-auth",
        json={"credentials": {"username": camsim.auth_user, "password": right}},
    )
    wait_for(lambda: ingest_reason() is None, 15, "streaming with the right password")

    views = [
        "/api/cameras",
        "/api/cameras/red-auth",
        "/api/cameras/red-auth/ingest",
        "/api/cameras/red-auth/health",
        "/api/health/cameras",
        "/api/alerts",
        "/api/audit",
    ]
    for token in (None, maint, ops, line_admin):
        for path in views:
            response = svc.request("GET", path, token=token)
            if response.status_code == 200:
                assert WRONG not in response.text and right not in response.text, (path, token)
    metrics = svc.request("GET", "/metrics")  # as admin: /metrics needs an admin or maintenance token
    assert metrics.status_code == 200
    assert WRONG not in metrics.text and right not in metrics.text
    log = svc.log_text()
    assert "red-auth" in log  # the camera's failures were logged...
    assert WRONG not in log and right not in log  # ...without its passwords
    svc.call("DELETE", "/api/cameras/red-auth", expect=204)
