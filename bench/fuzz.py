"""Long property-based fuzz of the HTTP API from its OpenAPI schema (the quick one is in the test suite).

Starts a real `videohub serve`, plants secrets (an RTSP password, credentials in a camera URL's path and
query, another user's password and token), then sends generated valid and invalid requests to every
operation, as admin and as a line_admin (tests/security/fuzz.py). Prints one JSON line: cases, status
counts, 5xx and leaked-secret findings. Goal (issue 11): >= 2,000 cases, no 5xx, no secret in any response.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.fixtures.service import VideohubService
from tests.security.fuzz import run_fuzz, seed_service


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--per-operation", type=int, default=25, help="examples per operation, role and mode")
    parser.add_argument("--seed", type=int, default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="videohub-fuzz-") as data, VideohubService(Path(data)) as service:
        seeded = seed_service(service)
        report = run_fuzz(service, seeded, per_operation=args.per_operation, fuzz_seed=args.seed)
        alive = service.http.get("/readyz").status_code == 200
    line = {
        "bench": "fuzz",
        "per_operation": args.per_operation,
        **report.as_dict(),
        "service_ready_after": alive,
        "goal_met": report.cases >= 2000 and not report.server_errors and not report.leaks and alive,
    }
    print(json.dumps(line, ensure_ascii=False), flush=True)


if __name__ == "__main__":
    main()
