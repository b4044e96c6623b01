"""A real ``videohub serve`` on a Sentinel-managed Valkey follows a primary killed with SIGKILL.

Primary, replica and three Sentinels are real ``valkey-server`` processes (tests/fixtures/sentinel.py).
While a writer keeps registering cameras and users over the API, the primary is killed: the writes
in between answer 503 with Retry-After (never 500), the Sentinels promote the replica, the service
follows it without a restart, every write it acknowledged before the kill is still there, a /ws
client is told the store is degraded, then ok, and gets wall changes again, and the background loops
(registry follower, health, alerts) work on the new primary.
"""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from tests.faults.support import live_client, next_message, of_type
from tests.fixtures.sentinel import SentinelCluster
from tests.fixtures.service import USER_PASSWORD, VideohubService

FOLLOW_WITHIN = 15.0


@dataclass
class Writer:
    """Registers a camera, then a user, again and again; remembers what the API acknowledged."""

    svc: VideohubService
    tag: str
    cameras: list[str] = field(default_factory=list)
    users: list[str] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)
    no_retry_after: int = 0
    acked_at: list[float] = field(default_factory=list)
    stop: asyncio.Event = field(default_factory=asyncio.Event)

    async def run(self) -> None:
        async with httpx.AsyncClient(base_url=self.svc.base_url, timeout=20, headers=self.svc.auth()) as http:
            n = 0
            while not self.stop.is_set():
                n += 1
                camera_id, username = f"f{self.tag}{n}", f"u{self.tag}{n}"
                camera = {
                    "id": camera_id,
                    "name": f"故障切换 {n}",
                    "line": "public_security",
                    "area": "梅里镇",
                    "mode": "on_demand",
                    "streams": {"main": {"url": f"rtsp://127.0.0.1:9/{camera_id}"}},
                }
                user = {"username": username, "password": USER_PASSWORD, "role": "operator"}
                for path, body, acked in (
                    ("/api/cameras", camera, self.cameras),
                    ("/api/users", user, self.users),
                ):
                    response = await http.post(path, json=body)
                    self.statuses[response.status_code] += 1
                    if response.status_code == 201:
                        acked.append(camera_id if acked is self.cameras else username)
                        self.acked_at.append(time.monotonic())
                    elif response.status_code == 503 and "retry-after" not in response.headers:
                        self.no_retry_after += 1
                await asyncio.sleep(0.05)


async def wait_until(check: Callable[[], bool], within: float, what: str) -> None:
    deadline = time.monotonic() + within
    while not check():
        assert time.monotonic() < deadline, f"not within {within:.0f} s: {what}"
        await asyncio.sleep(0.1)


# One process, and the default deployment of one machine: a supervisor and a worker per core, each
# worker with its own connections, leases and consumers on the same Sentinel-managed store.
@pytest.mark.parametrize("workers", [1, 2])
async def test_the_service_follows_a_killed_primary_to_the_promoted_replica(
    videohub_service_factory: Callable[..., VideohubService], sentinel_cluster: SentinelCluster, workers: int
) -> None:
    cluster = sentinel_cluster
    env = {"VIDEOHUB_REDIS_URL": cluster.url, "VIDEOHUB_SERVER__LOG_LEVEL": "debug"}
    svc = await asyncio.to_thread(videohub_service_factory, env, ["--workers", str(workers)])
    tag = uuid.uuid4().hex[:6]
    operator = svc.create_user(f"op{tag}", "operator")
    wall_id = f"w{tag}"
    svc.call("PUT", f"/api/walls/{wall_id}", token=operator, json={"layout": "9"})
    # A camera URL may not point at the store: neither a Sentinel nor a data node.
    for node in [cluster.sentinels[0], *cluster.data]:
        body = {
            "id": f"s{tag}{node.port}",
            "name": "存储",
            "line": "public_security",
            "area": "梅里镇",
            "streams": {"main": {"url": f"rtsp://127.0.0.1:{node.port}/x"}},
        }
        refused = svc.request("POST", "/api/cameras", json=body)
        assert refused.status_code == 422, (node.name, refused.text)
        assert refused.json()["detail"][0]["loc"][-1] == "url"
    ws = await live_client(svc, operator, [f"wall:{wall_id}", "alerts", "health"])
    try:
        await next_message(ws, of_type("ready"))
        assert (await next_message(ws, of_type("wall")))["wall"]["layout"] == "9"

        writer = Writer(svc, tag)
        task = asyncio.create_task(writer.run())
        await wait_until(lambda: len(writer.cameras) >= 5 and len(writer.users) >= 5, 30, "writes before")
        old = await asyncio.to_thread(cluster.kill_primary)
        killed_at = time.monotonic()
        before = (list(writer.cameras), list(writer.users))  # acknowledged before the kill

        down = await next_message(ws, of_type("degraded"), within=FOLLOW_WITHIN)
        assert down == {"type": "degraded", "redis": "unreachable"}
        await wait_until(
            lambda: any(at > killed_at for at in writer.acked_at), FOLLOW_WITHIN, "a write after the kill"
        )
        up = await next_message(ws, of_type("degraded"), within=FOLLOW_WITHIN)
        assert up == {"type": "degraded", "redis": "ok"}
        acked_before = len(before[0]) + len(before[1])
        await wait_until(lambda: len(writer.acked_at) >= acked_before + 6, 30, "more writes after it")
        writer.stop.set()
        await task

        promoted = cluster.primary()
        assert promoted is not None and promoted is not old, "the Sentinels did not promote the replica"
        assert svc.running, "the service did not survive the failover"
        assert set(writer.statuses) <= {201, 503}, f"not 201 or 503 around the failover: {writer.statuses}"
        assert writer.statuses[503] > 0, "no write fell into the failover"
        assert writer.no_retry_after == 0, "a 503 without Retry-After"

        # Every write acknowledged before the kill (and after it) is on the new primary.
        listed = svc.call("GET", "/api/cameras?limit=500")["items"]
        assert set(writer.cameras) <= {camera["id"] for camera in listed}
        assert set(before[0]) <= set(writer.cameras)
        usernames = {user["username"] for user in svc.call("GET", "/api/users")}
        assert set(writer.users) <= usernames
        svc.login(before[1][0], USER_PASSWORD)  # a user made before the kill still logs in

        # Pub/sub follows too: a wall change after the failover reaches the socket.
        svc.call("PUT", f"/api/walls/{wall_id}", token=operator, json={"layout": "16"})
        changed = await next_message(ws, lambda m: m.get("type") == "wall" and m["wall"]["layout"] == "16")
        assert changed["wall"]["id"] == wall_id

        # The background loops follow too: the hub picks up a camera registered after the failover, its
        # health goes offline (nothing listens on port 9) and an alert opens, pushed to the socket.
        dead = f"dead{tag}"
        svc.create_camera(dead, "rtsp://127.0.0.1:9/live", mode="always_on")
        seen: dict[str, dict[str, Any]] = {}  # the alert and the health change come in either order

        def about_dead(message: dict[str, Any]) -> bool:
            if message.get("type") == "health" and message["camera"] == dead:
                seen["health"] = message
            elif message.get("type") == "alert" and message["alert"]["camera"] == dead:
                seen["alert"] = message
            return len(seen) == 2

        await next_message(ws, about_dead, within=30)
        assert seen["health"]["new"] == "offline"
        assert seen["alert"]["event"] == "opened"

        metrics = svc.request("GET", "/metrics")
        assert metrics.status_code == 200
        ups = re.findall(r'^videohub_redis_up\{worker="([^"]+)"\} (\S+)$', metrics.text, re.M)
        assert len(ups) == workers and all(value == "1.0" for _, value in ups), (ups, metrics.text[-2000:])
        log = svc.log_text(tail=None)
        for secret in (cluster.password, cluster.sentinel_password):
            assert secret not in log, "a password in the log"
            assert secret not in metrics.text, "a password in /metrics"
    finally:
        await ws.close()
