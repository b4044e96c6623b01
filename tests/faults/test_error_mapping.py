"""Which errors the API maps to 503: the Redis client's outages, not any OSError of the process."""

from __future__ import annotations

import httpx
from redis.exceptions import BusyLoadingError

from tests.apiclient import Api


async def test_redis_loading_is_503_and_other_os_errors_stay_500(api: Api) -> None:
    async def loading() -> None:
        raise BusyLoadingError("Valkey is loading the dataset in memory")

    async def disk() -> None:
        raise PermissionError(13, "Permission denied", "/var/lib/videohub/snapshot.jpg")

    api.app.add_api_route("/test/loading", loading)
    api.app.add_api_route("/test/disk", disk)
    transport = httpx.ASGITransport(app=api.app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://videohub.test") as client:
        busy = await client.get("/test/loading")
        assert busy.status_code == 503 and busy.headers["retry-after"] == "2"
        assert busy.json() == {"detail": "the store (Redis) is unreachable; retry shortly"}
        other = await client.get("/test/disk")
        assert other.status_code == 500 and "snapshot" not in other.text
