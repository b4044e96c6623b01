"""The store and the CLI on a real Sentinel-managed Valkey (primary, replica, 3 Sentinels)."""

from __future__ import annotations

import asyncio
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fixtures.sentinel import SentinelCluster
from videohub.redisurl import store_addresses
from videohub.settings.store import StoreSettings
from videohub.store import Store


def test_the_cli_manages_users_through_the_sentinels(
    sentinel_cluster: SentinelCluster, tmp_path: Path
) -> None:
    env = {**os.environ, "VIDEOHUB_REDIS_URL": sentinel_cluster.url}
    cli = [sys.executable, "-m", "videohub.cli", "user"]
    data = ["--data-dir", str(tmp_path / "data")]
    added = subprocess.run(
        [*cli, "add", "wang", "--role", "maintenance", "--password-stdin", *data],
        input="a-long-password-1\n",
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert added.returncode == 0, added.stderr
    listed = subprocess.run([*cli, "list", *data], capture_output=True, text=True, timeout=60, env=env)
    assert listed.returncode == 0, listed.stderr
    assert "wang\tmaintenance" in listed.stdout
    output = added.stdout + added.stderr + listed.stdout + listed.stderr
    assert sentinel_cluster.password not in output and sentinel_cluster.sentinel_password not in output
    assert not (tmp_path / "data" / "valkey").exists(), "an embedded Valkey was started beside the Sentinels"


async def test_a_transaction_is_on_the_replica_when_acknowledged_and_goes_on_without_one(
    sentinel_cluster: SentinelCluster, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    cluster = sentinel_cluster
    primary = cluster.primary()
    replica = next(node for node in cluster.data if node is not primary)
    store = await Store.open(cluster.url, tmp_path, StoreSettings(replica_wait_ms=500))
    try:
        # Camera URLs are refused at every node of the store: Sentinels, primary and replica.
        ports = {port for _, port in store_addresses(store.redis)}
        assert ports == {node.port for node in [*cluster.sentinels, *cluster.data]}
        with cluster.data_client(replica) as direct:
            for n in range(20):
                async with store.redis.pipeline(transaction=True) as pipe:
                    pipe.set(f"vh:test:{n}", str(n))
                    pipe.incr("vh:test:count")
                    await pipe.execute()
                # WAIT 1 ran on the writing connection: the replica has it as soon as it is acknowledged.
                assert direct.get(f"vh:test:{n}") == str(n)
            assert direct.get("vh:test:count") == "20"

        # The replica dies: writes are still acknowledged (by the primary alone), with one warning.
        await asyncio.to_thread(replica.kill)
        caplog.set_level(logging.WARNING, logger="videohub.redisurl")
        for _ in range(10):
            async with store.redis.pipeline(transaction=True) as pipe:
                pipe.incr("vh:test:count")
                await pipe.execute()
        assert await store.redis.get("vh:test:count") == "30"
        warnings = [r for r in caplog.records if "no replica acknowledged" in r.getMessage()]
        assert len(warnings) == 1
    finally:
        await store.close()
