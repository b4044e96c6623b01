"""Which errors the API maps to 503: the Redis client's outages, not any OSError of the process."""

from __future__ import annotations

import httpx
from redis.asyncio.sentinel import MasterNotFoundError
from redis.exceptions import BusyLoadingError, ReadOnlyError, ResponseError

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


async def test_a_failover_is_503_and_other_refused_commands_stay_500(api: Api) -> None:
    """READONLY (a write on a primary just demoted) and no primary known to the Sentinels are outages;
    any other command Redis refuses is a bug."""

    async def demoted() -> None:
        raise ReadOnlyError("You can't write against a read only replica.")

    async def no_primary() -> None:
        raise MasterNotFoundError("No master found for 'vhmaster'")

    async def refused() -> None:
        raise ResponseError("WRONGTYPE Operation against a key holding the wrong kind of value")

    for path, handler in (("demoted", demoted), ("no_primary", no_primary), ("refused", refused)):
        api.app.add_api_route(f"/test/{path}", handler, methods=["POST"])
    transport = httpx.ASGITransport(app=api.app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://videohub.test") as client:
        for path in ("demoted", "no_primary"):
            response = await client.post(f"/test/{path}")
            assert response.status_code == 503 and response.headers["retry-after"] == "2", path
        assert (await client.post("/test/refused")).status_code == 500
