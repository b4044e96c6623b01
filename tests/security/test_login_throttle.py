"""The login throttle against a real service: check and count are one atomic step, a (user, address)
pair waits longer after each failure, an address has its own decaying ceiling, and a flood from one
address never locks the real user out from theirs.

The shipped defaults apply: 5 failures per (user, address) before the delays (2, 4, 8 … s) start,
and an address bucket of 20 failed attempts that drains at 6 per minute.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable

from tests.fixtures.service import ADMIN_PASSWORD, USER_PASSWORD, VideohubService
from tests.security.auth_support import async_client_from, audit, client_from, login_status, metric

MAX_FAILURES = 5
ADDRESS_BURST = 20
VERIFIED = "videohub_login_verifications_total"


async def test_sixty_parallel_wrong_logins_are_not_all_checked(
    videohub_service_factory: Callable[..., VideohubService],
) -> None:
    svc = videohub_service_factory()
    before = metric(svc, VERIFIED)
    async with async_client_from(svc, "127.0.0.2") as attacker:
        responses = await asyncio.gather(
            *(
                attacker.post("/api/auth/login", json={"username": "admin", "password": f"guess-{n:02d}"})
                for n in range(60)
            )
        )
    codes = Counter(r.status_code for r in responses)
    assert codes[401] <= MAX_FAILURES, f"{codes[401]} of 60 parallel guesses were checked: {codes}"
    assert set(codes) <= {401, 429}, codes
    assert all(int(r.headers["retry-after"]) >= 1 for r in responses if r.status_code == 429)
    assert metric(svc, VERIFIED) - before == codes[401]
    assert (
        len([e for e in audit(svc, "auth.login_failed") if e["after"]["address"] == "127.0.0.2"])
        == codes[401]
    )
    # The real admin, from their own desk, still logs in.
    with client_from(svc, "127.0.0.3") as desk:
        assert login_status(desk, "admin", ADMIN_PASSWORD).status_code == 200


def test_each_failure_past_the_limit_waits_longer_and_a_success_resets(
    videohub_service_factory: Callable[..., VideohubService],
) -> None:
    svc = videohub_service_factory()
    svc.create_user("sun", "operator")
    before = metric(svc, VERIFIED)
    with client_from(svc, "127.0.0.4") as client:
        for _ in range(MAX_FAILURES):
            assert login_status(client, "sun", "wrong-pw-1").status_code == 401
        first = login_status(client, "sun", USER_PASSWORD)  # right password, but too soon
        assert first.status_code == 429
        first_wait = int(first.headers["retry-after"])
        assert 1 <= first_wait <= 4, first_wait
        time.sleep(first_wait + 0.2)
        assert login_status(client, "sun", "wrong-pw-1").status_code == 401
        second = login_status(client, "sun", "wrong-pw-1")
        assert second.status_code == 429
        second_wait = int(second.headers["retry-after"])
        assert second_wait > first_wait, (first_wait, second_wait)
        time.sleep(second_wait + 0.2)
        assert login_status(client, "sun", USER_PASSWORD).status_code == 200
        # The success reset the pair: wrong passwords are checked again, not refused.
        for _ in range(2):
            assert login_status(client, "sun", "wrong-pw-1").status_code == 401
    # Refused attempts were never verified: 5 + 1 + 1 + 2 checks.
    assert metric(svc, VERIFIED) - before == MAX_FAILURES + 4


def test_an_address_has_a_ceiling_that_decays(
    videohub_service_factory: Callable[..., VideohubService],
) -> None:
    svc = videohub_service_factory()
    svc.create_user("qian", "operator")
    with client_from(svc, "127.0.0.5") as sprayer:
        # One guess each for many users: no pair reaches its limit, the address does. (The bucket
        # drains while the spray runs, so a slow machine may get a guess or two more.)
        codes = [
            login_status(sprayer, f"user{n:02d}", "spray-pw-1").status_code for n in range(ADDRESS_BURST + 3)
        ]
        allowed = codes.index(429) if 429 in codes else len(codes)
        assert ADDRESS_BURST <= allowed <= ADDRESS_BURST + 2, codes
        before = metric(svc, VERIFIED)
        refused = login_status(sprayer, "qian", USER_PASSWORD)
        assert refused.status_code == 429
        wait = int(refused.headers["retry-after"])
        assert 1 <= wait <= 10, wait
        assert metric(svc, VERIFIED) == before
        # Other addresses are not affected...
        with client_from(svc, "127.0.0.6") as desk:
            assert login_status(desk, "qian", USER_PASSWORD).status_code == 200
        # ...and the ceiling drains with time: one more attempt after the wait.
        time.sleep(wait + 0.2)
        assert login_status(sprayer, "qian", USER_PASSWORD).status_code == 200


def test_an_unknown_user_is_checked_and_throttled_like_a_known_one(
    videohub_service_factory: Callable[..., VideohubService],
) -> None:
    svc = videohub_service_factory()
    before = metric(svc, VERIFIED)
    with client_from(svc, "127.0.0.7") as client:
        answers = [login_status(client, "ghost", "whatever-1") for _ in range(MAX_FAILURES + 1)]
        known = [login_status(client, "admin", "whatever-1") for _ in range(MAX_FAILURES + 1)]
    for replies in (answers, known):
        assert [r.status_code for r in replies] == [401] * MAX_FAILURES + [429]
        assert {r.json()["detail"] for r in replies[:-1]} == {"wrong username or password"}
    # A password hash is verified for the unknown user too (as slow as a wrong password).
    assert metric(svc, VERIFIED) - before == 2 * MAX_FAILURES
