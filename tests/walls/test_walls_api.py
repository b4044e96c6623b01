"""Walls and presets over HTTP on real Valkey: who may write, validation naming the field, tours,
presets recalled onto a wall, the audit trail, and the pub/sub message every worker hears."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from tests.apiclient import Api, camera_body
from videohub.walls import CHANNEL


async def _cameras(api: Api, *ids: str) -> None:
    for camera_id in ids:
        response = await api.client.post(
            "/api/cameras", json=camera_body(id=camera_id), headers=api.auth("admin")
        )
        assert response.status_code == 201, response.text


def _loc(response: Any) -> list[list[Any]]:
    assert response.status_code == 422, response.text
    return [d["loc"] for d in response.json()["detail"]]


async def test_operator_drives_a_wall_others_read_it(api: Api) -> None:
    await _cameras(api, "cam-a", "cam-b")
    body = {
        "name": "大屏",
        "layout": "9",
        "tiles": [{"camera_id": "cam-a"}, {"camera_id": "cam-b", "stream": "main"}],
    }
    response = await api.client.put("/api/walls/main", json=body, headers=api.auth("operator"))
    assert response.status_code == 200, response.text
    wall = response.json()
    assert wall["layout"] == "9" and len(wall["tiles"]) == 9
    assert wall["tiles"][1] == {"camera_id": "cam-b", "stream": "main"}
    assert wall["tiles"][2] == {"camera_id": None, "stream": "sub"}
    assert wall["updated_by"] == "operator" and wall["version"] >= 1

    for reader in ("maintenance", "ps_admin", "admin"):
        got = await api.client.get("/api/walls/main", headers=api.auth(reader))
        assert got.status_code == 200 and got.json()["tiles"][0]["camera_id"] == "cam-a"
    for denied in ("maintenance", "ps_admin"):
        put = await api.client.put("/api/walls/main", json={"layout": "1"}, headers=api.auth(denied))
        assert put.status_code == 403
    assert (await api.client.get("/api/walls/main")).status_code == 401

    listed = await api.client.get("/api/walls", headers=api.auth("maintenance"))
    assert [w["id"] for w in listed.json()] == ["main"]
    audit = await api.client.get("/api/audit", params={"action": "wall.update"}, headers=api.auth("admin"))
    assert audit.json()["items"][0]["target"] == "main"


async def test_an_unsaved_wall_is_empty(api: Api) -> None:
    response = await api.client.get("/api/walls/lobby", headers=api.auth("operator"))
    assert response.status_code == 200
    assert response.json()["version"] == 0 and response.json()["layout"] == "4"
    assert (await api.client.get("/api/walls/Bad Id", headers=api.auth("operator"))).status_code == 422


async def test_validation_names_the_field(api: Api) -> None:
    await _cameras(api, "cam-a")
    put = api.client.put
    auth = api.auth("operator")
    assert _loc(await put("/api/walls/main", json={"layout": "5"}, headers=auth)) == [["body", "layout"]]
    bad_stream = {"layout": "4", "tiles": [{"camera_id": "cam-a", "stream": "hd"}]}
    assert _loc(await put("/api/walls/main", json=bad_stream, headers=auth)) == [
        ["body", "tiles", 0, "stream"]
    ]
    unknown = {"layout": "4", "tiles": [{"camera_id": "cam-a"}, {"camera_id": "nope"}]}
    assert _loc(await put("/api/walls/main", json=unknown, headers=auth)) == [
        ["body", "tiles", 1, "camera_id"]
    ]
    tour_cam = {"layout": "4", "tours": [{"tile": 0, "cameras": ["cam-a", "ghost"], "dwell_seconds": 5}]}
    assert _loc(await put("/api/walls/main", json=tour_cam, headers=auth)) == [
        ["body", "tours", 0, "cameras", 1]
    ]
    short = {"layout": "4", "tours": [{"tile": 0, "cameras": ["cam-a"], "dwell_seconds": 1}]}
    assert _loc(await put("/api/walls/main", json=short, headers=auth)) == [
        ["body", "tours", 0, "dwell_seconds"]
    ]
    too_many = {"layout": "1", "tiles": [{"camera_id": "cam-a"}, {"camera_id": "cam-a"}]}
    response = await put("/api/walls/main", json=too_many, headers=auth)
    assert response.status_code == 422 and "layout 1 has 1 tiles" in response.text
    outside = {"layout": "4", "tours": [{"tile": 4, "cameras": ["cam-a"]}]}
    response = await put("/api/walls/main", json=outside, headers=auth)
    assert response.status_code == 422 and "outside layout 4" in response.text
    assert _loc(await put("/api/walls/main", json={"layout": "4", "colour": "red"}, headers=auth)) == [
        ["body", "colour"]
    ]


async def test_tours_keep_their_start_until_changed(api: Api) -> None:
    await _cameras(api, "cam-a", "cam-b", "cam-c")
    auth = api.auth("operator")
    tour = {"tile": 0, "cameras": ["cam-a", "cam-b"], "dwell_seconds": 5}
    first = (
        await api.client.put("/api/walls/main", json={"layout": "4", "tours": [tour]}, headers=auth)
    ).json()
    started = first["tours"][0]["started_at"]
    assert isinstance(started, float)
    # Another tile changes: the tour cycles on, displays stay in step.
    body = {"layout": "4", "tiles": [{}, {"camera_id": "cam-c"}], "tours": [tour]}
    second = (await api.client.put("/api/walls/main", json=body, headers=auth)).json()
    assert second["tours"][0]["started_at"] == started
    await asyncio.sleep(0.01)
    changed = {**tour, "cameras": ["cam-a", "cam-b", "cam-c"]}
    third = (
        await api.client.put("/api/walls/main", json={"layout": "4", "tours": [changed]}, headers=auth)
    ).json()
    assert third["tours"][0]["started_at"] > started
    wall_tour = {"layout": "9", "tours": [{"tile": "wall", "cameras": ["cam-a", "cam-b", "cam-c"]}]}
    response = await api.client.put("/api/walls/main", json=wall_tour, headers=auth)
    assert response.status_code == 200 and response.json()["tours"][0]["tile"] == "wall"


async def test_presets_save_recall_delete(api: Api) -> None:
    await _cameras(api, "cam-a", "cam-b")
    auth = api.auth("operator")
    wall = {
        "layout": "1+5",
        "tiles": [{"camera_id": "cam-a", "stream": "main"}, {"camera_id": "cam-b"}],
        "tours": [{"tile": 2, "cameras": ["cam-a", "cam-b"], "dwell_seconds": 10}],
    }
    created = await api.client.post("/api/presets", json={"name": "防汛预案", "wall": wall}, headers=auth)
    assert created.status_code == 201, created.text
    preset = created.json()
    assert created.headers["location"] == f"/api/presets/{preset['id']}"
    assert preset["name"] == "防汛预案" and len(preset["wall"]["tiles"]) == 6

    await api.client.put("/api/walls/hall", json={"layout": "16"}, headers=auth)
    recalled = await api.client.post(
        f"/api/presets/{preset['id']}/recall", params={"wall": "hall"}, headers=auth
    )
    assert recalled.status_code == 200, recalled.text
    hall = (await api.client.get("/api/walls/hall", headers=api.auth("maintenance"))).json()
    assert hall["layout"] == "1+5"
    assert hall["tiles"][0] == {"camera_id": "cam-a", "stream": "main"}
    assert hall["tours"][0]["tile"] == 2 and hall["tours"][0]["started_at"] is not None

    listed = await api.client.get("/api/presets", headers=api.auth("ps_admin"))
    assert [p["name"] for p in listed.json()] == ["防汛预案"]
    got = await api.client.get(f"/api/presets/{preset['id']}", headers=api.auth("maintenance"))
    assert got.json()["wall"]["layout"] == "1+5"
    for denied in ("maintenance", "ps_admin"):
        assert (
            await api.client.delete(f"/api/presets/{preset['id']}", headers=api.auth(denied))
        ).status_code == 403
        assert (
            await api.client.post("/api/presets", json={"name": "x", "wall": wall}, headers=api.auth(denied))
        ).status_code == 403
        recall = await api.client.post(f"/api/presets/{preset['id']}/recall", headers=api.auth(denied))
        assert recall.status_code == 403

    bad = await api.client.post("/api/presets", json={"name": " ", "wall": wall}, headers=auth)
    assert _loc(bad) == [["body", "name"]]
    deleted = await api.client.delete(f"/api/presets/{preset['id']}", headers=auth)
    assert deleted.status_code == 204
    assert (await api.client.get(f"/api/presets/{preset['id']}", headers=auth)).status_code == 404
    assert (await api.client.post(f"/api/presets/{preset['id']}/recall", headers=auth)).status_code == 404

    actions = [
        e["action"] for e in (await api.client.get("/api/audit", headers=api.auth("admin"))).json()["items"]
    ]
    assert {"preset.create", "preset.recall", "preset.delete"} <= set(actions)


async def test_every_worker_hears_a_wall_change(api: Api) -> None:
    await _cameras(api, "cam-a")
    redis = api.app.state.services.store.redis
    pubsub = redis.pubsub(ignore_subscribe_messages=True)
    await pubsub.subscribe(CHANNEL)
    try:
        body = {"layout": "1", "tiles": [{"camera_id": "cam-a"}]}
        response = await api.client.put("/api/walls/ops", json=body, headers=api.auth("admin"))
        assert response.status_code == 200
        message = None
        for _ in range(50):
            message = await pubsub.get_message(timeout=0.1)
            if message is not None:
                break
        assert message is not None
        wall = json.loads(message["data"])
        assert wall["id"] == "ops" and wall["tiles"][0]["camera_id"] == "cam-a"
    finally:
        await pubsub.aclose()


async def test_a_stale_console_cannot_undo_another(api: Api) -> None:
    await _cameras(api, "cam-a", "cam-b")
    auth = api.auth("operator")
    first = await api.client.put("/api/walls/main", json={"layout": "4"}, headers=auth)
    etag = first.headers["etag"]
    assert etag == f'"{first.json()["version"]}"'
    assert (await api.client.get("/api/walls/main", headers=auth)).headers["etag"] == etag
    # Console A changes the wall on top of the version it saw.
    body_a = {"layout": "4", "tiles": [{"camera_id": "cam-a"}]}
    changed = await api.client.put("/api/walls/main", json=body_a, headers={**auth, "If-Match": etag})
    assert changed.status_code == 200
    # Console B still shows the old version: its change is refused, A's camera stays.
    body_b = {"layout": "4", "tiles": [{}, {"camera_id": "cam-b"}]}
    stale = await api.client.put("/api/walls/main", json=body_b, headers={**auth, "If-Match": etag})
    assert stale.status_code == 412 and "changed meanwhile" in stale.text
    wall = (await api.client.get("/api/walls/main", headers=auth)).json()
    assert wall["tiles"][0]["camera_id"] == "cam-a" and wall["tiles"][1]["camera_id"] is None
    bad = await api.client.put("/api/walls/main", json=body_b, headers={**auth, "If-Match": "abc"})
    assert _loc(bad) == [["header", "If-Match"]]
    # Without If-Match the last write wins (scripts, integrations).
    assert (await api.client.put("/api/walls/main", json=body_b, headers=auth)).status_code == 200
