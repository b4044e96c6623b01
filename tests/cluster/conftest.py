"""Fixtures of the cluster tests: a real Sentinel-managed Valkey (primary, replica, 3 Sentinels)."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fixtures.sentinel import SentinelCluster


@pytest.fixture
def sentinel_cluster(tmp_path: Path) -> Iterator[SentinelCluster]:
    cluster = SentinelCluster(
        tmp_path / "sentinel",
        password=f"dn-{secrets.token_hex(8)}",
        sentinel_password=f"sn-{secrets.token_hex(8)}",
    )
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.close()
