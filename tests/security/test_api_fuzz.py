"""Quick property-based fuzz of the whole HTTP API from its OpenAPI schema (the long run: bench/fuzz.py).

A real service with planted secrets; generated valid and invalid requests to every operation, as admin
and as a line_admin. No answer may be a 5xx, and no answer may carry a planted secret.
"""

from __future__ import annotations

import os
from collections.abc import Callable

from tests.fixtures.service import VideohubService
from tests.security.fuzz import run_fuzz, seed_service

MIN_CASES = 200


def test_fuzzed_requests_get_no_5xx_and_never_a_stored_secret(
    videohub_service_factory: Callable[..., VideohubService],
) -> None:
    service = videohub_service_factory()
    seeded = seed_service(service)
    fuzz_seed = int(os.environ["VIDEOHUB_FUZZ_SEED"]) if "VIDEOHUB_FUZZ_SEED" in os.environ else None
    report = run_fuzz(service, seeded, per_operation=3, fuzz_seed=fuzz_seed)
    summary = f"seed {report.seed}, {report.cases} cases over {report.operations} operations"
    assert report.cases >= MIN_CASES, summary
    assert not report.server_errors, f"{summary}:\n" + "\n".join(map(str, report.server_errors[:10]))
    assert not report.leaks, f"{summary}:\n" + "\n".join(map(str, report.leaks[:10]))
    # The service is still whole afterwards: it answers and the admin can still work.
    assert service.http.get("/readyz").status_code == 200
    assert service.request("GET", "/api/auth/me").status_code == 200
