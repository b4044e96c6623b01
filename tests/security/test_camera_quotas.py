"""One line cannot starve the others: cameras per line and always_on streams per node are capped,
and a CSV import over a cap is refused before any row is created."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tests.fixtures.service import VideohubService

ServiceFactory = Callable[..., VideohubService]


def camera(camera_id: str, line: str, mode: str) -> dict[str, Any]:
    url = f"rtsp://127.0.0.1:9/{camera_id}"  # nothing listens: always_on ones just keep retrying
    return {"id": camera_id, "name": camera_id, "line": line, "streams": {"main": {"url": url}}, "mode": mode}


def test_cameras_per_line_and_always_on_streams_are_capped(videohub_service_factory: ServiceFactory) -> None:
    svc = videohub_service_factory(
        env={"VIDEOHUB_INGEST__MAX_CAMERAS_PER_LINE": "3", "VIDEOHUB_INGEST__MAX_ALWAYS_ON_STREAMS": "2"}
    )
    token = svc.create_user("ga_bulk", "line_admin", line="public_security")

    def post(camera_id: str, line: str = "public_security", mode: str = "always_on") -> Any:
        who = token if line == "public_security" else None
        return svc.request("POST", "/api/cameras", token=who, json=camera(camera_id, line, mode))

    assert post("ga-1").status_code == 201
    assert post("ga-2").status_code == 201
    full = post("ga-3")
    assert full.status_code == 409 and "ingest.max_always_on_streams" in full.text, full.text
    assert post("ga-3", mode="on_demand").status_code == 201
    over = post("ga-4", mode="on_demand")
    assert over.status_code == 409 and "ingest.max_cameras_per_line" in over.text, over.text
    # The cap is per line: another line still registers (on_demand: the node's always_on cap is used up).
    assert post("aj-1", "safety", "on_demand").status_code == 201
    assert post("aj-2", "safety").status_code == 409
    # Turning an on_demand camera into always_on counts against the node's cap too.
    edit = svc.request("PATCH", "/api/cameras/aj-1", json={"mode": "always_on"})
    assert edit.status_code == 409 and "ingest.max_always_on_streams" in edit.text
    # Disabling frees an always_on slot.
    svc.call("PATCH", "/api/cameras/ga-1", token=token, json={"enabled": False})
    svc.call("PATCH", "/api/cameras/aj-1", json={"mode": "always_on"})

    # A CSV import that would pass the line's cap is refused as a whole, before any row is created.
    rows = "".join(f"aj-csv-{i},导入{i},safety,rtsp://127.0.0.1:9/c{i},on_demand\n" for i in range(3))
    response = svc.http.post(
        "/api/cameras/import",
        content=("id,name,line,main_url,mode\n" + rows).encode(),
        headers={**svc.auth(), "Content-Type": "text/csv"},
    )
    assert response.status_code == 409 and "ingest.max_cameras_per_line" in response.text, response.text
    listing = svc.call("GET", "/api/cameras", params={"line": "safety"})
    assert [c["id"] for c in listing["items"]] == ["aj-1"]
