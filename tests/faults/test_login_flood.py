"""A login flood with production argon2 costs (64 MiB, 3 passes): password checks run on their own
small pool with a bounded queue, so the excess is answered 503 + Retry-After at once instead of
queueing without bound, and the real user logs in when the flood has passed."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable

import httpx

from tests.fixtures.service import ADMIN_PASSWORD, VideohubService
from tests.security.auth_support import async_client_from, client_from, login_status, metric

PRODUCTION_ARGON2 = {"VIDEOHUB_AUTH__ARGON2_TIME_COST": "3", "VIDEOHUB_AUTH__ARGON2_MEMORY_KIB": "65536"}


async def test_a_login_flood_is_refused_beyond_the_pool_not_queued(
    videohub_service_factory: Callable[..., VideohubService],
) -> None:
    svc = videohub_service_factory(env=PRODUCTION_ARGON2)
    before = metric(svc, "videohub_login_verifications_total")
    # Forty addresses, one guess each: the throttle lets every one through, the pool does not.
    clients = [async_client_from(svc, f"127.0.2.{n}") for n in range(1, 41)]

    async def guess(client: httpx.AsyncClient, n: int) -> httpx.Response:
        async with client:
            return await client.post("/api/auth/login", json={"username": "admin", "password": f"flood-{n}"})

    responses = await asyncio.gather(*(guess(c, n) for n, c in enumerate(clients)))
    codes = Counter(r.status_code for r in responses)
    assert set(codes) <= {401, 503}, codes
    assert codes[503] > 0, f"every one of 40 parallel logins waited for a password check: {codes}"
    assert all(int(r.headers["retry-after"]) >= 1 for r in responses if r.status_code == 503)
    assert metric(svc, "videohub_login_verifications_total") - before == codes[401]
    assert metric(svc, "videohub_login_refused_total", reason="busy") == codes[503]
    with client_from(svc, "127.0.0.9") as desk:
        assert login_status(desk, "admin", ADMIN_PASSWORD).status_code == 200
