"""Redis Sentinel failover: time from ``kill -9`` of the primary to the first API write that succeeds.

Starts a Valkey primary, one replica and three Sentinels on localhost (tests/fixtures/sentinel.py:
``down-after-milliseconds`` 1000, ``failover-timeout`` 2000) and a real ``videohub serve`` on
``redis+sentinel://``. A writer registers cameras over the API every 50 ms. Each round kills the
current primary with SIGKILL, times the first 201 after the kill, then restarts the killed node (the
Sentinels make it a replica of the new primary) and waits until the cluster is whole again. After
the last round every camera the API acknowledged is looked up: ``lost_acked_writes`` counts the
missing ones. Also the cost of ``WAIT 1`` on a transaction (``store.replica_wait_ms``), measured
in-process against the same cluster with and without it.

Prints one JSON line per measurement (``op``: ``failover``, ``wait_cost``).
Goal (issue 14): the service follows the promoted replica within 15 s; no 5xx but 503.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import secrets
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx

from tests.fixtures.sentinel import DOWN_AFTER_MS, FAILOVER_TIMEOUT_MS, SentinelCluster
from tests.fixtures.service import VideohubService
from videohub.settings.store import StoreSettings
from videohub.store import Store

GOAL_S = 15.0


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


class Writer:
    def __init__(self, svc: VideohubService) -> None:
        self.svc = svc
        self.acked: list[str] = []
        self.acked_at: list[float] = []
        self.statuses: Counter[int] = Counter()
        self.no_retry_after = 0
        self.stop = asyncio.Event()

    async def run(self) -> None:
        tag = secrets.token_hex(3)
        async with httpx.AsyncClient(base_url=self.svc.base_url, timeout=20, headers=self.svc.auth()) as http:
            n = 0
            while not self.stop.is_set():
                n += 1
                camera_id = f"b{tag}{n}"
                body = {
                    "id": camera_id,
                    "name": camera_id,
                    "line": "public_security",
                    "area": "梅里镇",
                    "mode": "on_demand",
                    "streams": {"main": {"url": f"rtsp://127.0.0.1:9/{camera_id}"}},
                }
                try:
                    response = await http.post("/api/cameras", json=body)
                except httpx.HTTPError:
                    self.statuses[0] += 1
                    continue
                self.statuses[response.status_code] += 1
                if response.status_code == 201:
                    self.acked.append(camera_id)
                    self.acked_at.append(time.monotonic())
                elif response.status_code == 503 and "retry-after" not in response.headers:
                    self.no_retry_after += 1
                await asyncio.sleep(0.05)


async def failovers(cluster: SentinelCluster, kills: int) -> dict[str, Any]:
    env = {"VIDEOHUB_REDIS_URL": cluster.url}
    data_dir = Path(tempfile.mkdtemp(prefix="vh-bench-sentinel-"))
    svc = await asyncio.to_thread(VideohubService, data_dir, env=env)
    times: list[float] = []
    try:
        writer = Writer(svc)
        task = asyncio.create_task(writer.run())
        for _ in range(kills):
            await asyncio.sleep(1.0)
            killed = await asyncio.to_thread(cluster.kill_primary)
            at = time.monotonic()
            while not any(t > at for t in writer.acked_at):
                if time.monotonic() - at > 60:
                    raise RuntimeError("no write succeeded within 60 s of the kill")
                await asyncio.sleep(0.01)
            times.append(next(t for t in writer.acked_at if t > at) - at)
            await asyncio.to_thread(cluster.restart, killed)
            await asyncio.to_thread(cluster.wait_healthy, 60)
        writer.stop.set()
        await task
        present: set[str] = set()
        while True:
            page = svc.call("GET", f"/api/cameras?limit=1000&offset={len(present)}")["items"]
            present |= {camera["id"] for camera in page}
            if len(page) < 1000:
                break
        lost = sum(1 for camera_id in writer.acked if camera_id not in present)
        return {
            "bench": "sentinel",
            "op": "failover",
            "kills": kills,
            "p50_s": round(statistics.median(times), 2),
            "p95_s": round(percentile(times, 0.95), 2),
            "max_s": round(max(times), 2),
            "runs_s": [round(t, 2) for t in times],
            "writes": sum(writer.statuses.values()),
            "acked_writes": len(writer.acked),
            "lost_acked_writes": lost,
            "statuses": {str(k): v for k, v in sorted(writer.statuses.items())},
            "http_5xx_not_503": sum(v for k, v in writer.statuses.items() if k >= 500 and k != 503),
            "503_without_retry_after": writer.no_retry_after,
            "down_after_ms": DOWN_AFTER_MS,
            "failover_timeout_ms": FAILOVER_TIMEOUT_MS,
            "goal_s": GOAL_S,
        }
    finally:
        await asyncio.to_thread(svc.close)


async def wait_cost(cluster: SentinelCluster, rounds: int) -> list[dict[str, Any]]:
    lines = []
    for wait_ms in (0, 200):
        settings = StoreSettings(replica_wait_ms=wait_ms)
        store = await Store.open(cluster.url, Path(tempfile.mkdtemp()), settings)
        try:
            samples = []
            for n in range(rounds):
                started = time.perf_counter()
                async with store.redis.pipeline(transaction=True) as pipe:
                    pipe.hset(f"vh:bench:cam:{n}", mapping={"name": "x" * 200, "line": "public_security"})
                    pipe.sadd("vh:bench:index", str(n))
                    await pipe.execute()
                samples.append((time.perf_counter() - started) * 1000)
            await store.redis.delete("vh:bench:index", *[f"vh:bench:cam:{n}" for n in range(rounds)])
        finally:
            await store.close()
        lines.append(
            {
                "bench": "sentinel",
                "op": "wait_cost",
                "replica_wait_ms": wait_ms,
                "transactions": rounds,
                "p50_ms": round(statistics.median(samples), 3),
                "p95_ms": round(percentile(samples, 0.95), 3),
            }
        )
    return lines


async def main_async(args: argparse.Namespace) -> None:
    root = Path(tempfile.mkdtemp(prefix="vh-sentinel-"))
    cluster = SentinelCluster(
        root, password=f"dn-{secrets.token_hex(8)}", sentinel_password=f"sn-{secrets.token_hex(8)}"
    )
    try:
        await asyncio.to_thread(cluster.start)
        for line in await wait_cost(cluster, args.transactions):
            print(json.dumps(line), flush=True)
        print(json.dumps(await failovers(cluster, args.kills)), flush=True)
    finally:
        await asyncio.to_thread(cluster.close)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--kills", type=int, default=5)
    parser.add_argument("--transactions", type=int, default=500, help="for the WAIT cost")
    parser.add_argument("--quick", action="store_true", help="2 kills, 100 transactions")
    args = parser.parse_args()
    if args.quick:
        args.kills, args.transactions = 2, 100
    asyncio.run(main_async(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
