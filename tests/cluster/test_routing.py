"""Routing in a cluster of two real apps on one Valkey (issue 14): a request that reaches a worker other
than the camera's owner is served by the owner.

WHEP through a non-owner plays (proxy) or answers 307 with the owner's URL (redirect), and DELETE
through the non-owner ends the session where it lives; ingest state, snapshots, warm-up holds,
``/api/sessions`` and ``/metrics`` reach (or gather from) the workers that hold them; a dead owner
is 503 + Retry-After, never 500; the internal headers are trusted only with the cluster secret.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.apiclient import ADMIN_PASSWORD, PASSWORD, camera_body, login
from tests.cluster.nodes import SECRET, Node, cluster_nodes, wait_for
from tests.conftest import make_settings
from tests.fixtures.camsim import CameraSimulator
from tests.webrtc.viewer import Viewer
from videohub.cluster.routing import CLIENT, HOP, INTERNAL
from videohub.services import Parts
from videohub.store import Store

pytestmark = pytest.mark.media

CAMERAS = [f"cam-r{i}" for i in range(12)]
SIZE = (640, 360)


@dataclass
class Pair:
    """Two workers: ``entry`` (the one the clients talk to) and ``owner``, which serves ``camera``
    (placement chose it); ``entry`` itself serves ``local_camera``."""

    entry: Node
    owner: Node
    camera: str
    local_camera: str
    tokens: dict[str, str]

    def auth(self, who: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[who]}"}

    def client(self, node: Node, source: str = "127.0.0.1") -> httpx.AsyncClient:
        """An HTTP client on ``node`` whose connections come from ``source`` (any 127/8 address)."""
        transport = httpx.AsyncHTTPTransport(local_address=source)
        return httpx.AsyncClient(base_url=node.address, transport=transport, timeout=30)


async def _pair(store: Store, camsim: CameraSimulator, routing: str) -> AsyncIterator[Pair]:
    settings = make_settings(admin_password=ADMIN_PASSWORD, webrtc__feed_start_timeout=5.0)
    parts = Parts(hub=True, whep=True)
    async with cluster_nodes(settings, store, ["w1", "w2"], parts, whep_routing=routing) as nodes:
        entry, owner = nodes
        async with httpx.AsyncClient(base_url=entry.address, timeout=30) as http:
            tokens = {"admin": await login(http, "admin", ADMIN_PASSWORD)}
            admin = {"Authorization": f"Bearer {tokens['admin']}"}
            for name, spec in {
                "operator": {"role": "operator"},
                "maintenance": {"role": "maintenance"},
                "ps_admin": {"role": "line_admin", "line": "public_security"},
                "safety_admin": {"role": "line_admin", "line": "safety"},
            }.items():
                created = await http.post(
                    "/api/users", json={"username": name, "password": PASSWORD, **spec}, headers=admin
                )
                assert created.status_code == 201, created.text
                tokens[name] = await login(http, name, PASSWORD)
            for camera_id in CAMERAS:
                body = camera_body(id=camera_id, mode="on_demand")
                body["streams"] = {"main": {"url": camsim.rtsp_url("cb", {"cam": camera_id})}}
                assert (await http.post("/api/cameras", json=body, headers=admin)).status_code == 201
        # Placement (rendezvous over w1 and w2) is deterministic: pick a camera each worker serves.
        owners = {camera_id: await entry.cluster.owner(camera_id) for camera_id in CAMERAS}
        assert all(owners.values()), owners
        by_worker = {w.id: c for c, w in reversed(owners.items()) if w is not None}
        assert set(by_worker) == {"w1", "w2"}, owners
        yield Pair(entry, owner, by_worker["w2"], by_worker["w1"], tokens)


@pytest.fixture
async def pair(store: Store, camsim: CameraSimulator) -> AsyncIterator[Pair]:
    async for made in _pair(store, camsim, "proxy"):
        yield made


@pytest.fixture
async def redirecting(store: Store, camsim: CameraSimulator) -> AsyncIterator[Pair]:
    async for made in _pair(store, camsim, "redirect"):
        yield made


async def _offer(
    http: httpx.AsyncClient, pair: Pair, who: str, sdp: str, camera: str | None = None, **headers: str
) -> httpx.Response:
    sent = {**pair.auth(who), "Content-Type": "application/sdp", **headers}
    return await http.post(f"/whep/{camera or pair.camera}?stream=main", content=sdp, headers=sent)


def _sessions(node: Node) -> int:
    manager = node.services.sessions
    assert manager is not None
    return len(manager)


async def test_whep_through_a_non_owner_plays_on_the_owner_and_delete_there_ends_it(pair: Pair) -> None:
    viewer = Viewer()
    try:
        async with pair.client(pair.entry) as http:
            answer = await _offer(http, pair, "operator", await viewer.offer())
            assert answer.status_code == 201, answer.text
            assert answer.headers["content-type"] == "application/sdp" and answer.headers["etag"]
            location = answer.headers["location"]
            assert location.startswith("/whep/sessions/w2.")  # the session URL names its worker
            await viewer.accept(answer.text)
            frame = await viewer.frame(within=30)
            assert (frame.width, frame.height) == SIZE
            # Played from the owner's ingest; the entry point pulled nothing.
            assert _sessions(pair.owner) == 1 and _sessions(pair.entry) == 0
            entry_hub = pair.entry.services.hub
            assert entry_hub is not None and entry_hub.stats(pair.camera)["main"].state.value == "idle"
            owner_hub = pair.owner.services.hub
            assert owner_hub is not None
            feed = owner_hub.feed(pair.camera)
            assert feed is not None and feed.subscribers == 1

            # Trickle through the non-owner reaches the session: accepted, a stale ETag refused there.
            trickle = {**pair.auth("operator"), "Content-Type": "application/trickle-ice-sdpfrag"}
            frag = "a=mid:0\r\na=candidate:1 1 udp 2122260223 10.9.0.1 50001 typ host\r\n"
            patched = await http.patch(
                location, content=frag, headers={**trickle, "If-Match": answer.headers["etag"]}
            )
            assert patched.status_code == 204, patched.text
            stale = await http.patch(location, content=frag, headers={**trickle, "If-Match": '"stale"'})
            assert stale.status_code == 412
            # Another user may not end it, through either node.
            assert (await http.delete(location, headers=pair.auth("ps_admin"))).status_code == 403
            ended = await http.delete(location, headers=pair.auth("operator"))
            assert ended.status_code == 200, ended.text
            assert await viewer.frames_until_end(within=10)
            assert _sessions(pair.owner) == 0
            assert (await http.delete(location, headers=pair.auth("operator"))).status_code == 404
    finally:
        await viewer.close()


async def test_redirect_mode_answers_307_with_the_owner_url(redirecting: Pair) -> None:
    pair = redirecting
    viewer = Viewer()
    try:
        async with pair.client(pair.entry) as http:
            moved = await _offer(http, pair, "operator", await viewer.offer())
            assert moved.status_code == 307, moved.text
            target = moved.headers["location"]
            assert target == f"{pair.owner.address}/whep/{pair.camera}?stream=main"
            assert _sessions(pair.owner) == 0  # nothing was proxied
            # A player follows with the same method, body and token: the owner answers the offer.
            answer = await http.post(
                target, content=moved.request.content, headers=dict(moved.request.headers)
            )
            assert answer.status_code == 201, answer.text
            assert answer.headers["location"].startswith("/whep/sessions/w2.")
            await viewer.accept(answer.text)
            assert (await viewer.frame(within=30)).width == SIZE[0]
    finally:
        await viewer.close()


async def test_a_forged_client_or_hop_header_without_the_secret_is_ignored(pair: Pair) -> None:
    viewers = [Viewer(), Viewer(), Viewer()]
    forged = {CLIENT: "203.0.113.9", HOP: "7", INTERNAL: "not-the-secret"}
    try:
        # Straight to the owner, forging the headers a node would send: the socket's address counts.
        async with pair.client(pair.owner, source="127.0.0.3") as direct:
            answer = await _offer(direct, pair, "operator", await viewers[0].offer(), **forged)
            assert answer.status_code == 201, answer.text
        # Through the entry point: the forged hop count does not stop the forwarding, and the owner
        # records the address the entry point saw (it came with the secret).
        async with pair.client(pair.entry, source="127.0.0.2") as http:
            answer = await _offer(http, pair, "operator", await viewers[1].offer(), **forged)
            assert answer.status_code == 201, answer.text
            rows = (await http.get("/api/sessions", headers=pair.auth("admin"))).json()
        assert sorted(row["remote"] for row in rows) == ["127.0.0.2", "127.0.0.3"]
        # A node's request that already passed two nodes is not forwarded again.
        async with pair.client(pair.entry) as http:
            looped = await _offer(
                http, pair, "operator", await viewers[2].offer(), **{INTERNAL: SECRET, HOP: "2"}
            )
        assert looped.status_code == 503 and looped.headers["retry-after"] == "1"
        assert SECRET not in looped.text
    finally:
        for viewer in viewers:
            await viewer.close()


async def test_a_dead_owner_is_503_with_retry_after_and_names_nothing_secret(pair: Pair) -> None:
    await pair.owner.stop_http()  # alive in the directory (it still beats), answering nothing
    async with pair.client(pair.entry) as http:
        for method, path in (
            ("POST", f"/whep/{pair.camera}"),
            ("GET", f"/api/cameras/{pair.camera}/ingest"),
            ("GET", f"/api/cameras/{pair.camera}/snapshot.jpg"),
            ("DELETE", "/whep/sessions/w2.some-token"),
        ):
            headers = {**pair.auth("operator"), "Content-Type": "application/sdp"}
            answer = await http.request(method, path, content="v=0\r\n", headers=headers)
            assert answer.status_code == 503, (path, answer.text)
            assert answer.headers["retry-after"] == "1"
            assert "w2" in answer.json()["detail"] and SECRET not in answer.text
        # Once w2 has left the cluster, its sessions are gone with it.
        await pair.owner.stop()
        await wait_for(lambda: pair.entry.cluster.worker("w2") is None, 5, "w2 leaves the directory")
        gone = await http.delete("/whep/sessions/w2.some-token", headers=pair.auth("operator"))
        assert gone.status_code == 404


async def test_ingest_snapshot_and_warm_are_served_by_the_owner(pair: Pair) -> None:
    async with pair.client(pair.entry) as http:
        operator = pair.auth("operator")
        held = await http.post(
            f"/api/cameras/{pair.camera}/warm", json={"stream": "main", "seconds": 20}, headers=operator
        )
        assert held.status_code == 200, held.text
        owner_warm, entry_warm = pair.owner.services.warm, pair.entry.services.warm
        assert owner_warm is not None and entry_warm is not None
        assert len(owner_warm) == 1 and len(entry_warm) == 0
        snapshot = await http.get(f"/api/cameras/{pair.camera}/snapshot.jpg", headers=operator)
        assert snapshot.status_code == 200, snapshot.text
        assert snapshot.headers["content-type"] == "image/jpeg" and snapshot.content[:2] == b"\xff\xd8"
        ingest = await http.get(f"/api/cameras/{pair.camera}/ingest", headers=operator)
        assert ingest.status_code == 200, ingest.text
        assert ingest.json()["worker"] == "w2"
        assert ingest.json()["streams"][0]["state"] in {"connecting", "streaming"}
        # The line policy holds on the way: another line's admin does not see the camera.
        hidden = await http.get(f"/api/cameras/{pair.camera}/ingest", headers=pair.auth("safety_admin"))
        assert hidden.status_code == 404
        released = await http.delete(f"/api/cameras/{pair.camera}/warm?stream=main", headers=operator)
        assert released.status_code == 204
        assert len(owner_warm) == 0


async def test_sessions_list_every_worker_and_name_a_missing_one(pair: Pair) -> None:
    viewers = [Viewer(), Viewer()]  # one session on each worker
    try:
        async with pair.client(pair.entry) as entry, pair.client(pair.owner) as owner:
            for camera, viewer in zip((pair.local_camera, pair.camera), viewers, strict=True):
                answer = await _offer(entry, pair, "operator", await viewer.offer(), camera)
                assert answer.status_code == 201, answer.text
            for http in (entry, owner):
                listed = await http.get("/api/sessions", headers=pair.auth("maintenance"))
                assert listed.status_code == 200, listed.text
                assert sorted(row["worker"] for row in listed.json()) == ["w1", "w2"]
                assert "x-videohub-missing-workers" not in listed.headers
            # ?local=1 without the secret is an ordinary request: still the whole list.
            local = await entry.get("/api/sessions?local=1", headers=pair.auth("admin"))
            assert sorted(row["worker"] for row in local.json()) == ["w1", "w2"]
            assert (await entry.get("/api/sessions", headers=pair.auth("operator"))).status_code == 403
            await pair.owner.stop_http()
            partial = await entry.get("/api/sessions", headers=pair.auth("admin"))
            assert partial.status_code == 200
            assert [row["worker"] for row in partial.json()] == ["w1"]
            assert partial.headers["x-videohub-missing-workers"] == "w2"
    finally:
        for viewer in viewers:
            await viewer.close()


def _samples(text: str) -> list[tuple[str, dict[str, str]]]:
    return [(s.name, s.labels) for family in text_string_to_metric_families(text) for s in family.samples]


async def test_one_scrape_covers_every_worker_each_sample_labelled(pair: Pair) -> None:
    async with pair.client(pair.entry) as http:
        scraped = await http.get("/metrics", headers=pair.auth("admin"))
        assert scraped.status_code == 200, scraped.text
        samples = _samples(scraped.text)
        assert samples and all("worker" in labels for _, labels in samples)
        workers = {labels["worker"] for name, labels in samples if name == "process_cpu_seconds_total"}
        assert workers == {"w1", "w2"}
        up = {labels["worker"] for name, labels in samples if name == "videohub_worker_up"}
        assert up == {"w1", "w2"}
        types = [line for line in scraped.text.splitlines() if line.startswith("# TYPE ")]
        assert len(types) == len(set(types))  # one header per family, as Prometheus parses it
        assert SECRET not in scraped.text and pair.tokens["admin"] not in scraped.text
        assert (await http.get("/metrics", headers=pair.auth("operator"))).status_code == 403

        await pair.owner.stop_http()
        partial = await http.get("/metrics", headers=pair.auth("admin"))
        assert partial.status_code == 200
        down = [
            (labels["worker"], s.value)
            for family in text_string_to_metric_families(partial.text)
            for s in family.samples
            if s.name == "videohub_worker_up"
            for labels in [s.labels]
        ]
        assert sorted(down) == [("w1", 1.0), ("w2", 0.0)]


async def test_workers_list_both_with_their_load(pair: Pair) -> None:
    viewer = Viewer()
    try:
        async with pair.client(pair.entry) as http:
            answer = await _offer(http, pair, "operator", await viewer.offer())
            assert answer.status_code == 201, answer.text
            await viewer.accept(answer.text)
            await viewer.frame(within=30)
            for who in ("admin", "maintenance", "operator"):
                listed = await http.get("/api/workers", headers=pair.auth(who))
                assert listed.status_code == 200, listed.text
            assert (await http.get("/api/workers", headers=pair.auth("ps_admin"))).status_code == 403

            async def w2() -> dict[str, Any]:
                rows = (await http.get("/api/workers", headers=pair.auth("admin"))).json()["workers"]
                assert [row["id"] for row in rows] == ["w1", "w2"]
                assert rows[0]["me"] and not rows[1]["me"]
                assert SECRET not in str(rows)
                row: dict[str, Any] = rows[1]
                return row

            for _ in range(50):  # counted at its next heartbeat (every second)
                if (row := await w2())["viewers"] == 1:
                    break
                await asyncio.sleep(0.2)
            assert (row["viewers"], row["cameras"]) == (1, 1)
            assert row["address"] == pair.owner.address and row["state"] == "live"
            assert row["heartbeat_age_seconds"] < 3 and row["cpu"] >= 0
    finally:
        await viewer.close()
