"""Property-based fuzz of the HTTP API from its own OpenAPI schema (schemathesis + Hypothesis).

Used by the quick run in the test suite (``tests/security/test_api_fuzz.py``) and the long run in
``bench/fuzz.py``. A real ``videohub serve`` is seeded with secrets first (an RTSP password given as
credentials, one written into a camera URL's path and query the way DVRs take it, and another user's
password and bearer token); then every operation of the schema is called with generated requests, both
valid ones (positive) and invalid ones (negative), authenticated as admin and as a line_admin. For
operations with a camera id in the path, some cases use a real camera of each line, so the fuzz
reaches past the 404 into the handlers. Every response is checked for two things: no 5xx, and no
seeded secret anywhere in its headers or body.
"""

from __future__ import annotations

import random
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import schemathesis
from hypothesis import HealthCheck, given, seed, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.core.result import Err

from tests.fixtures.service import VideohubService

# SDP offers, trickle fragments and CSV travel as text: send generated bodies of those types as-is.
schemathesis.serializer.alias(
    ["application/sdp", "application/trickle-ice-sdpfrag", "text/csv"], "text/plain"
)

# Operations that would end the fuzzing session's own login: covered by their own tests.
SKIPPED = {("POST", "/api/auth/logout"), ("POST", "/api/auth/refresh")}

RTSP_PASSWORD = "Fz-Rtsp-Secret-7391"
PATH_PASSWORD = "Fz-Path-Secret-5521"
QUERY_TOKEN = "Fz-Query-Token-8830"
USER_PASSWORD = "Fz-User-Pass-4417"


@dataclass
class Seeded:
    """What the fuzz planted in the service before it started."""

    secrets: list[str]
    tokens: dict[str, str]
    """role name -> bearer token the fuzz runs with."""
    camera_ids: list[str]


@dataclass
class Finding:
    role: str
    mode: str
    method: str
    path: str
    status: int
    problem: str
    excerpt: str

    def __str__(self) -> str:
        where = f"[{self.role}/{self.mode}] {self.method} {self.path} -> {self.status}"
        return f"{where}: {self.problem} {self.excerpt!r}"


@dataclass
class FuzzReport:
    cases: int = 0
    seed: int = 0
    operations: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    server_errors: list[Finding] = field(default_factory=list)
    leaks: list[Finding] = field(default_factory=list)
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "cases": self.cases,
            "seed": self.seed,
            "operations": self.operations,
            "statuses": {str(k): v for k, v in sorted(self.statuses.items())},
            "server_errors": len(self.server_errors),
            "leaks": len(self.leaks),
            "seconds": round(self.seconds, 1),
            "findings": [str(f) for f in (self.server_errors + self.leaks)[:20]],
        }


def seed_service(service: VideohubService) -> Seeded:
    """Plant the secrets the fuzz looks for, and log in the roles it runs as."""
    line_admin = service.create_user("fz_line", "line_admin", line="public_security")
    operator = service.create_user("fz_oper", "operator", password=USER_PASSWORD)
    cams = [
        service.create_camera(
            "ga-fuzz-1",
            "rtsp://10.20.30.40:554/Streaming/Channels/101",
            credentials={"username": "admin", "password": RTSP_PASSWORD},
        ),
        service.create_camera(
            "ga-fuzz-2", f"rtsp://10.20.30.41:554/user=admin&password={PATH_PASSWORD}&channel=1&stream=0.sdp"
        ),
        service.create_camera(
            "aj-fuzz-1", f"rtsp://10.20.30.42/live?token={QUERY_TOKEN}&ch=2", line="safety", mode="on_demand"
        ),
    ]
    return Seeded(
        secrets=[RTSP_PASSWORD, PATH_PASSWORD, QUERY_TOKEN, USER_PASSWORD, operator],
        tokens={"admin": service.admin_token, "line_admin": line_admin},
        camera_ids=[c["id"] for c in cams],
    )


def _check(report: FuzzReport, seeded: Seeded, role: str, mode: str, case: Any, response: Any) -> None:
    report.cases += 1
    status = int(response.status_code)
    report.statuses[status] += 1
    path = str(case.formatted_path)
    if status >= 500:
        report.server_errors.append(
            Finding(role, mode, case.method, path, status, "server error", response.text[:200])
        )
    haystack = response.text + " " + " ".join(f"{k}: {v}" for k, v in response.headers.items())
    for secret in seeded.secrets:
        if secret in haystack:
            at = haystack.index(secret)
            report.leaks.append(
                Finding(
                    role,
                    mode,
                    case.method,
                    path,
                    status,
                    "secret in response",
                    haystack[max(0, at - 80) : at],
                )
            )


def _fuzz_one(
    report: FuzzReport,
    seeded: Seeded,
    base_url: str,
    headers: dict[str, str],
    role: str,
    mode: str,
    strategy: Any,
    examples: int,
) -> None:
    @seed(report.seed)
    @settings(max_examples=examples, database=None, deadline=None, suppress_health_check=list(HealthCheck))
    @given(case=strategy)
    def call(case: Any) -> None:
        response = case.call(base_url=base_url, headers=headers, timeout=30)
        _check(report, seeded, role, mode, case, response)

    try:
        call()
    except Unsatisfiable:
        pass  # no invalid request exists for an operation without parameters or body (GET /healthz)


def run_fuzz(
    service: VideohubService, seeded: Seeded, *, per_operation: int, fuzz_seed: int | None = None
) -> FuzzReport:
    """Fuzz every operation ``per_operation`` times per (role, generation mode); returns what was seen."""
    report = FuzzReport(seed=fuzz_seed if fuzz_seed is not None else random.randrange(2**32))
    started = time.monotonic()
    schema = schemathesis.openapi.from_url(f"{service.base_url}/openapi.json")
    operations = []
    for result in schema.get_all_operations():
        if isinstance(result, Err):  # the schema itself is broken: that is a failure of its own
            raise AssertionError(f"the OpenAPI schema has an invalid operation: {result.err()}")
        operations.append(result.ok())
    operations = [op for op in operations if (op.method.upper(), op.path) not in SKIPPED]
    report.operations = len(operations)
    for role, token in seeded.tokens.items():
        headers = {"Authorization": f"Bearer {token}"}
        for op in operations:
            variants: list[tuple[str, Any]] = [
                (mode.value, op.as_strategy(generation_mode=mode)) for mode in GenerationMode
            ]
            if "{camera_id}" in op.path:
                # Real cameras of both lines: the line_admin must get 404 for the other line's.
                variants += [
                    (f"camera={cid}", op.as_strategy(path_parameters={"camera_id": cid}))
                    for cid in seeded.camera_ids
                ]
            for mode, strategy in variants:
                _fuzz_one(report, seeded, service.base_url, headers, role, mode, strategy, per_operation)
    report.seconds = time.monotonic() - started
    return report
