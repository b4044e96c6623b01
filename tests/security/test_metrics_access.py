"""``/metrics`` lists every camera id, line and viewer count: only admins, maintenance staff and a
configured Prometheus scrape token may read it."""

from __future__ import annotations

import uuid
from collections.abc import Callable

from tests.fixtures.service import VideohubService

SCRAPE = "scrape-" + "x" * 40


def test_metrics_need_an_admin_or_maintenance_token(videohub_service: VideohubService) -> None:
    svc = videohub_service
    tag = uuid.uuid4().hex[:6]
    camera_id = f"m{tag}"
    svc.create_camera(camera_id, "rtsp://127.0.0.1:9/none", mode="on_demand")
    try:
        anonymous = svc.http.get("/metrics")
        assert anonymous.status_code == 401 and camera_id not in anonymous.text
        assert anonymous.headers["www-authenticate"] == "Bearer"
        assert svc.http.get("/metrics", headers={"Authorization": "Bearer nope"}).status_code == 401
        for role, line in (("operator", None), ("line_admin", "safety")):
            token = svc.create_user(f"{role[:4]}{tag}", role, line=line)
            denied = svc.request("GET", "/metrics", token=token)
            assert denied.status_code == 403 and camera_id not in denied.text, (role, denied.text)
        maintenance = svc.create_user(f"mt{tag}", "maintenance")
        for token in (maintenance, svc.admin_token):
            allowed = svc.request("GET", "/metrics", token=token)
            assert allowed.status_code == 200 and "videohub_camera_state" in allowed.text
    finally:
        svc.request("DELETE", f"/api/cameras/{camera_id}")


def test_a_configured_scrape_token_reads_metrics(
    videohub_service_factory: Callable[..., VideohubService],
) -> None:
    svc = videohub_service_factory(env={"VIDEOHUB_SERVER__METRICS_TOKEN": SCRAPE})
    scraped = svc.http.get("/metrics", headers={"Authorization": f"Bearer {SCRAPE}"})
    assert scraped.status_code == 200 and "process_cpu_seconds" in scraped.text
    for wrong in (SCRAPE[:-1], SCRAPE + "x", SCRAPE.upper()):
        assert svc.http.get("/metrics", headers={"Authorization": f"Bearer {wrong}"}).status_code == 401
    assert svc.http.get("/metrics").status_code == 401
    # The scrape token is for /metrics only, and never shows up in the log.
    assert svc.http.get("/api/auth/me", headers={"Authorization": f"Bearer {SCRAPE}"}).status_code == 401
    assert SCRAPE not in svc.log_text(), "the scrape token reached the log"
