"""Camera credentials per stream, bound to the host they were given for; credential parameters in
URLs; line id prefixes; records of older versions. Over HTTP against a real Valkey."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.apiclient import Api, camera_body
from videohub.registry import CameraRegistry
from videohub.stream_secrets import StreamSecrets

SECRET = "Str3am-S3cret"
MAIN = "rtsp://192.0.2.40:554/ch1/main"
SUB = "rtsp://192.0.2.40:554/ch1/sub"


def registry(api: Api) -> CameraRegistry:
    reg: CameraRegistry = api.app.state.services.registry
    return reg


async def post(api: Api, body: dict[str, Any], who: str = "admin", status: int = 201) -> dict[str, Any]:
    response = await api.client.post("/api/cameras", json=body, headers=api.auth(who))
    assert response.status_code == status, response.text
    data: dict[str, Any] = response.json()
    return data


async def patch(api: Api, camera_id: str, body: dict[str, Any], status: int = 200) -> dict[str, Any]:
    response = await api.client.patch(f"/api/cameras/{camera_id}", json=body, headers=api.auth("admin"))
    assert response.status_code == status, response.text
    data: dict[str, Any] = response.json()
    return data


async def secrets_of(api: Api, camera_id: str, stream: str) -> StreamSecrets | None:
    reg = registry(api)
    camera = await reg.require(camera_id)
    return await reg.secrets(camera, stream)


def creds(password: str = SECRET, username: str = "admin") -> dict[str, str]:
    return {"username": username, "password": password}


async def test_each_stream_has_its_own_credentials(api: Api) -> None:
    body = camera_body(
        id="ga-two",
        streams={
            "main": {"url": MAIN, "credentials": creds("main-pw")},
            "sub": {"url": "rtsp://192.0.2.41/sub", "credentials": creds("sub-pw", "viewer")},
        },
    )
    cam = await post(api, body)
    assert cam["has_credentials"] is True
    assert cam["streams"]["main"]["has_credentials"] and cam["streams"]["sub"]["has_credentials"]
    main, sub = await secrets_of(api, "ga-two", "main"), await secrets_of(api, "ga-two", "sub")
    assert main is not None and (main.username, main.password, str(main.endpoint)) == (
        "admin",
        "main-pw",
        "rtsp://192.0.2.40:554",
    )
    assert sub is not None and (sub.username, sub.password, str(sub.endpoint)) == (
        "viewer",
        "sub-pw",
        "rtsp://192.0.2.41:554",
    )
    # The top-level credentials are the main stream's; giving both is ambiguous.
    both = camera_body(streams={"main": {"url": MAIN, "credentials": creds()}}, credentials=creds())
    response = await api.client.post("/api/cameras", json=both, headers=api.auth("admin"))
    assert response.status_code == 422 and response.json()["detail"][0]["loc"] == ["body", "credentials"]


async def test_a_sub_stream_shares_the_main_credentials_only_on_the_same_endpoint(api: Api) -> None:
    await post(
        api,
        camera_body(id="ga-same", streams={"main": {"url": MAIN}, "sub": {"url": SUB}}, credentials=creds()),
    )
    sub = await secrets_of(api, "ga-same", "sub")
    assert sub is not None and sub.password == SECRET
    other = {"main": {"url": MAIN}, "sub": {"url": "rtsp://192.0.2.41:554/ch1/sub"}}
    cam = await post(api, camera_body(id="ga-other", streams=other, credentials=creds()))
    assert cam["streams"]["sub"]["has_credentials"] is False
    assert await secrets_of(api, "ga-other", "sub") is None
    # Another port of the same host is another endpoint too.
    other_port = {"main": {"url": MAIN}, "sub": {"url": "rtsp://192.0.2.40:8554/ch1/sub"}}
    await post(api, camera_body(id="ga-port", streams=other_port, credentials=creds()))
    assert await secrets_of(api, "ga-port", "sub") is None


async def test_changing_scheme_host_or_port_without_credentials_clears_them(api: Api) -> None:
    await post(
        api,
        camera_body(id="ga-move", streams={"main": {"url": MAIN}, "sub": {"url": SUB}}, credentials=creds()),
    )
    # A new path on the same endpoint keeps them (the default port written out is the same endpoint).
    kept = await patch(
        api, "ga-move", {"streams": {"main": {"url": "rtsp://192.0.2.40/ch2/main"}, "sub": {"url": SUB}}}
    )
    assert kept["has_credentials"] is True
    for moved in (
        "rtsp://192.0.2.42/ch2/main",
        "rtsp://192.0.2.40:8554/ch2/main",
        "rtsps://192.0.2.40:554/ch2/main",
    ):
        await patch(api, "ga-move", {"credentials": creds()})
        cam = await patch(api, "ga-move", {"streams": {"main": {"url": moved}, "sub": {"url": SUB}}})
        assert cam["has_credentials"] is False and cam["streams"]["main"]["has_credentials"] is False, moved
        assert await secrets_of(api, "ga-move", "main") is None
        # The sub stream stayed on the host its credentials were given for: it keeps them.
        sub = await secrets_of(api, "ga-move", "sub")
        assert sub is not None and sub.password == SECRET and cam["streams"]["sub"]["has_credentials"]
        await patch(api, "ga-move", {"streams": {"main": {"url": MAIN}, "sub": {"url": SUB}}})
    # Credentials given with the move are taken; an explicit null removes a stream's.
    cam = await patch(
        api, "ga-move", {"streams": {"main": {"url": "rtsp://192.0.2.43/x", "credentials": creds("new-pw")}}}
    )
    main = await secrets_of(api, "ga-move", "main")
    assert main is not None and main.password == "new-pw" and str(main.endpoint) == "rtsp://192.0.2.43:554"
    assert cam["streams"]["sub"] is None and await secrets_of(api, "ga-move", "sub") is None
    cam = await patch(
        api, "ga-move", {"streams": {"main": {"url": "rtsp://192.0.2.43/x", "credentials": None}}}
    )
    assert cam["has_credentials"] is False
    # Userinfo in the new URL counts as giving them again.
    cam = await patch(api, "ga-move", {"streams": {"main": {"url": f"rtsp://u:{SECRET}@192.0.2.44/x"}}})
    assert cam["has_credentials"] is True and cam["streams"]["main"]["url"] == "rtsp://192.0.2.44/x"


async def test_credential_parameters_are_kept_for_their_host_only(api: Api) -> None:
    url = "rtsp://192.0.2.50:554/user=admin&password=S3cret&channel=1&stream=0.sdp"
    cam = await post(api, camera_body(id="ga-dvr", streams={"main": {"url": url}}))
    stored = "rtsp://192.0.2.50:554/user=***&password=***&channel=1&stream=0.sdp"
    assert cam["streams"]["main"]["url"] == stored and cam["has_credentials"] is False
    main = await secrets_of(api, "ga-dvr", "main")
    assert main is not None and main.params == (("user", "admin"), ("password", "S3cret"))
    assert main.login().params == ("admin", "S3cret")
    # Sending the redacted URL back (a form that round-trips) keeps the values; a new channel too.
    await patch(api, "ga-dvr", {"streams": {"main": {"url": stored.replace("channel=1", "channel=2")}}})
    main = await secrets_of(api, "ga-dvr", "main")
    assert main is not None and main.params == (("user", "admin"), ("password", "S3cret"))
    # *** means "the stored value": there is none for another host.
    response = await api.client.patch(
        "/api/cameras/ga-dvr",
        json={"streams": {"main": {"url": stored.replace("192.0.2.50", "192.0.2.51")}}},
        headers=api.auth("admin"),
    )
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "streams", "main", "url"]
    assert "user=*** has no stored value for this host" in response.json()["detail"][0]["msg"]
    for who in ("admin", "operator", "maintenance", "ps_admin"):
        for path in ("/api/cameras", "/api/cameras/ga-dvr"):
            assert "S3cret" not in (await api.client.get(path, headers=api.auth(who))).text
    assert "S3cret" not in (await api.client.get("/api/audit", headers=api.auth("admin"))).text


async def test_urls_outside_the_allowed_networks_name_the_setting(api: Api) -> None:
    response = await api.client.post(
        "/api/cameras",
        json=camera_body(streams={"main": {"url": "rtsp://203.0.113.5/x"}}),
        headers=api.auth("admin"),
    )
    assert response.status_code == 422
    detail = response.json()["detail"][0]
    assert detail["loc"] == ["body", "streams", "main", "url"]
    assert detail["msg"] == "203.0.113.5 is outside the allowed networks (ingest.allowed_networks)"


async def test_ids_carry_the_line_prefix(api: Api) -> None:
    lines = (await api.client.get("/api/lines", headers=api.auth("operator"))).json()
    assert {line["id"]: line["id_prefix"] for line in lines} == {
        "public_security": "ga",
        "safety": "aj",
        "environment": "hb",
        "land_resources": "gt",
    }
    # A line admin's ids start with its prefix; an admin may choose freely, except another line's prefix.
    response = await api.client.post(
        "/api/cameras", json=camera_body(id="gate-1"), headers=api.auth("ps_admin")
    )
    assert response.status_code == 422 and response.json()["detail"][0]["loc"] == ["body", "id"]
    assert "'ga-'" in response.json()["detail"][0]["msg"]
    await post(api, camera_body(id="ga-gate-1"), who="ps_admin")
    await post(api, camera_body(id="gate-1"))
    response = await api.client.post(
        "/api/cameras", json=camera_body(id="aj-gate-1", line="public_security"), headers=api.auth("admin")
    )
    assert response.status_code == 422 and response.json()["detail"][0]["loc"] == ["body", "id"]
    generated = await post(api, camera_body(line="safety"))
    assert generated["id"].startswith("aj-")
    # A prefixed id cannot move to another line (it would carry the wrong prefix there).
    response = await api.client.patch(
        "/api/cameras/ga-gate-1", json={"line": "safety"}, headers=api.auth("admin")
    )
    assert response.status_code == 422 and response.json()["detail"][0]["loc"] == ["body", "line"]
    assert (await patch(api, "gate-1", {"line": "safety"}))["line"] == "safety"


async def test_records_of_older_versions_keep_working(api: Api) -> None:
    """Camera-wide credentials and clear credential parameters, as older versions stored them."""
    redis = api.app.state.services.store.redis
    old = camera_body(id="old-1", streams={"main": {"url": MAIN}, "sub": {"url": SUB}})
    for camera_id, streams in (
        ("old-1", {"main": {"url": MAIN, "transport": "tcp"}, "sub": {"url": SUB, "transport": "tcp"}}),
        ("old-3", {"main": {"url": "rtsp://192.0.2.61/摄像头 1", "transport": "tcp"}}),
        ("old-4", {"main": {"url": "rtsp://192.0.2.62/x\r\nQUIT", "transport": "tcp"}}),
        (
            "old-2",
            {
                "main": {
                    "url": "rtsp://192.0.2.60/user=admin&password=Old-S3cret&channel=1",
                    "transport": "tcp",
                }
            },
        ),
    ):
        record = {
            **old,
            "id": camera_id,
            "streams": streams,
            "mode": "on_demand",
            "enabled": True,
            "tags": [],
        }
        record |= {"has_credentials": camera_id == "old-1", "created_at": "2026-01-01T00:00:00Z"}
        record |= {"updated_at": "2026-01-01T00:00:00Z", "location": None, "vendor": None, "model": None}
        await redis.set(f"vh:cam:{camera_id}", json.dumps(record))
        await redis.hset(
            "vh:cams:index", camera_id, json.dumps(["public_security", "梅里镇", True, "x", "on_demand"])
        )
    await redis.hset("vh:cred:old-1", mapping={"username": "admin", "password": SECRET})
    await redis.incr("vh:cams:version")

    # Before the migration runs: readable, and nothing secret comes out.
    listing = await api.client.get("/api/cameras", headers=api.auth("ps_admin"))
    assert "Old-S3cret" not in listing.text
    old1 = await registry(api).require("old-1")
    assert (
        old1.streams.main.has_credentials
        and old1.streams.sub is not None
        and old1.streams.sub.has_credentials
    )
    sub = await secrets_of(api, "old-1", "sub")
    assert sub is not None and sub.password == SECRET  # the old camera-wide password, same endpoint

    assert await registry(api).migrate() == 3
    assert await registry(api).migrate() == 0  # idempotent
    # Characters older versions let in are percent-encoded; a control character is never let out.
    old3 = await registry(api).require("old-3")
    assert old3.streams.main.url == "rtsp://192.0.2.61/%E6%91%84%E5%83%8F%E5%A4%B4%201"
    assert await registry(api).get("old-4") is None
    listed = (await api.client.get("/api/cameras", headers=api.auth("admin"))).json()
    assert sorted(c["id"] for c in listed["items"]) == ["old-1", "old-2", "old-3"]
    assert set(await redis.hkeys("vh:cred:old-1")) == {"main"}
    main = await secrets_of(api, "old-1", "main")
    assert main is not None and (main.username, main.password) == ("admin", SECRET)
    old2 = await secrets_of(api, "old-2", "main")
    assert old2 is not None and old2.params == (("user", "admin"), ("password", "Old-S3cret"))
    raw = await redis.get("vh:cam:old-2")
    assert "Old-S3cret" not in raw and "user=***&password=***" in raw


async def test_an_import_over_the_row_limit_is_refused_before_any_row(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("videohub.registry_csv.MAX_ROWS", 3)
    rows = "".join(f"ga-{i},导入{i},public_security,rtsp://192.0.2.70/{i}\n" for i in range(4))
    response = await api.client.post(
        "/api/cameras/import",
        content=("id,name,line,main_url\n" + rows).encode(),
        headers={**api.auth("admin"), "Content-Type": "text/csv"},
    )
    assert response.status_code == 422 and "more than 3 rows" in response.text
    assert (await api.client.get("/api/cameras", headers=api.auth("admin"))).json()["total"] == 0
