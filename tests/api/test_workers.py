"""``GET /api/workers`` and the ``worker`` label in one plain process (no cluster): it lists itself.

The cluster's own list (several workers, a stale one lost) is in ``tests/cluster/test_routing.py``.
"""

from __future__ import annotations

import os
import socket

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.apiclient import Api
from videohub.api.workers import worker_id


@pytest.mark.parametrize(
    ("who", "status"), [("admin", 200), ("maintenance", 200), ("operator", 200), ("ps_admin", 403)]
)
async def test_workers_by_role(api: Api, who: str, status: int) -> None:
    response = await api.client.get("/api/workers", headers=api.auth(who))
    assert response.status_code == status, response.text


async def test_one_process_lists_itself(api: Api) -> None:
    assert (await api.client.get("/api/workers")).status_code == 401
    listed = (await api.client.get("/api/workers", headers=api.auth("admin"))).json()
    assert listed["cluster"] is False and listed["heartbeat_ttl_seconds"] == 3.0
    rows = listed["workers"]
    assert len(rows) == 1
    row = rows[0]
    assert row["id"] == worker_id(api.app.state.services)
    assert (row["pid"], row["host"], row["state"], row["me"]) == (
        os.getpid(),
        socket.gethostname(),
        "live",
        True,
    )
    assert (row["cameras"], row["viewers"]) == (0, 0)  # no hub in these tests: nothing ingested
    assert row["heartbeat_age_seconds"] < 1 and row["started_at"] <= row["heartbeat_at"]


async def test_every_metric_sample_names_the_worker(api: Api) -> None:
    text = (await api.client.get("/metrics", headers=api.auth("admin"))).text
    worker = worker_id(api.app.state.services)
    samples = [s for family in text_string_to_metric_families(text) for s in family.samples]
    assert len(samples) > 20
    assert {s.labels.get("worker") for s in samples} == {worker}
