"""CSV import: per-row results; one bad row does not reject the good ones."""

from __future__ import annotations

from tests.apiclient import Api

CSV = """id,name,line,area,lat,lon,main_url,sub_url,username,password,mode,enabled,tags
gt-1,国土巡查一号,land_resources,西山村,31.2,120.1,rtsp://192.0.2.30/main,rtsp://192.0.2.30/sub,,,on_demand,是,矿区;巡查
gt-2,国土巡查二号,land_resources,西山村,,,rtsp://u:csv-secret-9@192.0.2.31/main,,,,,,
bad-line,坏线路,traffic,西山村,,,rtsp://192.0.2.32/main,,,,,,
bad-url,坏地址,land_resources,西山村,,,ftp://192.0.2.33/main,,,,,,
gt-1,重复编号,land_resources,西山村,,,rtsp://192.0.2.34/main,,,,,,
bad-lat,坏纬度,land_resources,西山村,95,120,rtsp://192.0.2.35/main,,,,,,
ga-9,公安点位,public_security,梅里镇,,,rtsp://192.0.2.36/main,,,,,,
"""


async def test_mixed_rows(api: Api) -> None:
    response = await api.client.post(
        "/api/cameras/import", content=CSV.encode(), headers={**api.auth("admin"), "Content-Type": "text/csv"}
    )
    assert response.status_code == 200, response.text
    result = response.json()
    by_row = {r["row"]: r for r in result["rows"]}
    assert result["created"] == 3 and result["failed"] == 4
    assert [by_row[i]["ok"] for i in range(1, 8)] == [True, True, False, False, False, False, True]
    assert by_row[3]["status"] == 422 and "line" in by_row[3]["error"]
    assert by_row[4]["status"] == 422 and "scheme" in by_row[4]["error"]
    assert by_row[5]["status"] == 409
    assert by_row[6]["status"] == 422 and "lat" in by_row[6]["error"]
    assert "csv-secret-9" not in response.text

    cam = (await api.client.get("/api/cameras/gt-1", headers=api.auth("admin"))).json()
    assert cam["mode"] == "on_demand" and cam["tags"] == ["矿区", "巡查"] and cam["location"]["lat"] == 31.2
    assert cam["streams"]["sub"]["url"] == "rtsp://192.0.2.30/sub"
    gt2 = (await api.client.get("/api/cameras/gt-2", headers=api.auth("admin"))).json()
    assert gt2["has_credentials"] and gt2["streams"]["main"]["url"] == "rtsp://192.0.2.31/main"


async def test_line_admin_imports_only_own_line(api: Api) -> None:
    response = await api.client.post(
        "/api/cameras/import",
        content=CSV.encode(),
        headers={**api.auth("ps_admin"), "Content-Type": "text/csv"},
    )
    rows = {r["row"]: r for r in response.json()["rows"]}
    assert rows[7]["ok"] and rows[1]["status"] == 403 and rows[2]["status"] == 403
    listing = (await api.client.get("/api/cameras", headers=api.auth("admin"))).json()
    assert [c["id"] for c in listing["items"]] == ["ga-9"]


async def test_bad_header_and_encoding(api: Api) -> None:
    headers = {**api.auth("admin"), "Content-Type": "text/csv"}
    response = await api.client.post("/api/cameras/import", content=b"name,colour\nx,red\n", headers=headers)
    assert response.status_code == 422
    assert "line" in response.json()["detail"][0]["msg"] and "colour" in response.json()["detail"][0]["msg"]
    response = await api.client.post(
        "/api/cameras/import",
        content="name,line,main_url\n".encode("gbk") + "中".encode("gbk") + b",x,y\n",
        headers=headers,
    )
    assert response.status_code == 422 and "UTF-8" in response.json()["detail"][0]["msg"]
    for who in ("operator", "maintenance"):
        denied = await api.client.post(
            "/api/cameras/import", content=CSV.encode(), headers={**api.auth(who), "Content-Type": "text/csv"}
        )
        assert denied.json()["created"] == 0
