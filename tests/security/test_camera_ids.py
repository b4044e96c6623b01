"""A line admin never learns another line's camera ids: a clash on POST or CSV import answers as if
the other camera did not exist."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tests.fixtures.service import VideohubService

ServiceFactory = Callable[..., VideohubService]


def camera(camera_id: str, line: str = "public_security") -> dict[str, Any]:
    return {
        "id": camera_id,
        "name": camera_id,
        "line": line,
        "streams": {"main": {"url": "rtsp://127.0.0.1:9/x"}},
        "mode": "on_demand",
    }


def answer(svc: VideohubService, token: str, camera_id: str) -> tuple[int, str]:
    response = svc.request("POST", "/api/cameras", token=token, json=camera(camera_id))
    return response.status_code, response.text.replace(camera_id, "<id>")


def import_answer(svc: VideohubService, token: str, camera_id: str) -> tuple[int, str | None]:
    csv = f"id,name,line,main_url,mode\n{camera_id},导入,public_security,rtsp://127.0.0.1:9/y,on_demand\n"
    response = svc.http.post(
        "/api/cameras/import", content=csv.encode(), headers={**svc.auth(token), "Content-Type": "text/csv"}
    )
    assert response.status_code == 200, response.text
    row = response.json()["rows"][0]
    error = row["error"].replace(camera_id, "<id>") if row["error"] else None
    return row["status"], error


def test_an_id_clash_never_reveals_another_lines_camera(videohub_service_factory: ServiceFactory) -> None:
    svc = videohub_service_factory()
    # Safety's cameras: one with safety's prefix, one with an id an admin chose freely.
    svc.call("POST", "/api/cameras", json=camera("aj-hidden-1", "safety"), expect=201)
    svc.call("POST", "/api/cameras", json=camera("hidden-2", "safety"), expect=201)
    token = svc.create_user("ga_prober", "line_admin", line="public_security")

    for taken, free in (("aj-hidden-1", "aj-free-1"), ("hidden-2", "free-2")):
        on_taken, on_free = answer(svc, token, taken), answer(svc, token, free)
        assert on_taken == on_free, (on_taken, on_free)
        assert on_taken[0] != 409
        assert import_answer(svc, token, taken) == import_answer(svc, token, free)
    assert svc.call("GET", "/api/cameras", token=token)["total"] == 0

    # A clash inside one's own line is an honest 409.
    svc.call("POST", "/api/cameras", token=token, json=camera("ga-gate-1"), expect=201)
    again = svc.request("POST", "/api/cameras", token=token, json=camera("ga-gate-1"))
    assert again.status_code == 409 and "ga-gate-1" in again.text
    assert import_answer(svc, token, "ga-gate-1")[0] == 409
    # Generated ids carry the line's prefix.
    generated = svc.call(
        "POST",
        "/api/cameras",
        token=token,
        json={k: v for k, v in camera("x").items() if k != "id"},
        expect=201,
    )
    assert generated["id"].startswith("ga-")
