"""Helpers for the auth, token and throttle tests against a real ``videohub serve``.

Clients from other loopback addresses (the whole 127/8 is loopback on Linux, so a socket bound to
127.0.0.2 reaches the service on 127.0.0.1 and the service sees 127.0.0.2 as the caller), metric
reads and the audit trail.
"""

from __future__ import annotations

from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.fixtures.service import VideohubService


def client_from(service: VideohubService, address: str) -> httpx.Client:
    """A client whose requests come from ``address`` (a 127/8 address)."""
    return httpx.Client(
        base_url=service.base_url, timeout=60.0, transport=httpx.HTTPTransport(local_address=address)
    )


def async_client_from(service: VideohubService, address: str) -> httpx.AsyncClient:
    limits = httpx.Limits(max_connections=200, max_keepalive_connections=200)
    return httpx.AsyncClient(
        base_url=service.base_url,
        timeout=120.0,
        transport=httpx.AsyncHTTPTransport(local_address=address, limits=limits),
    )


def metric(service: VideohubService, sample: str, **labels: str) -> float:
    """The value of one sample of ``/metrics`` (read as admin); 0 when it is absent."""
    response = service.request("GET", "/metrics")
    assert response.status_code == 200, response.text
    total = 0.0
    for family in text_string_to_metric_families(response.text):
        for s in family.samples:
            if s.name == sample and all(s.labels.get(k) == v for k, v in labels.items()):
                total += s.value
    return total


def audit(service: VideohubService, action: str, limit: int = 500) -> list[dict[str, Any]]:
    """Audit entries of one action, newest first (as admin)."""
    body = service.call("GET", "/api/audit", params={"action": action, "limit": limit})
    items: list[dict[str, Any]] = body["items"]
    return items


def login_status(client: httpx.Client, username: str, password: str) -> httpx.Response:
    return client.post("/api/auth/login", json={"username": username, "password": password})
