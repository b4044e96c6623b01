"""Forwarding a request to the worker that serves it (issue 14): the API side of the cluster.

A request may reach any node (an ``--role api`` entry point, or any worker behind ``--workers N``);
what it is about (a camera's WHEP offer, ingest stats, snapshot or warm-up hold; a WHEP session) lives
on one worker. ``Router`` sends the request on to that worker's internal address with one shared
``httpx.AsyncClient`` and streams the answer back (status, body and the headers a client reads:
Location, ETag, Link, Retry-After, Content-Type …). ``gather`` asks every live worker for its local
part of a list (``/api/sessions``, ``/metrics``) and names the ones that did not answer.

Forwarded requests carry three headers, trusted only next to the cluster secret:

    X-Videohub-Internal: <secret>     this request comes from another node (compared in constant time)
    X-Videohub-Hop: <n>               how many nodes it passed; past ``MAX_HOPS`` it is refused (503)
    X-Videohub-Client: <ip>           the original client's address (audit, login throttling)

A client that sends them without the secret gets them ignored: its own socket address is its
address, and its hop count is 0. The secret never reaches a log, a response or an error: a worker that
does not answer is 503 + Retry-After naming the worker id only.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from typing import Any

import httpx
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from videohub.aio import CloseOnce, Part
from videohub.cluster.node import Cluster
from videohub.cluster.workers import WorkerInfo
from videohub.errors import NotOwner, Unavailable

log = logging.getLogger(__name__)

INTERNAL = "x-videohub-internal"
HOP = "x-videohub-hop"
CLIENT = "x-videohub-client"
MAX_HOPS = 2
"""A request that already passed this many nodes is not forwarded again (views that disagree would
otherwise bounce it between two workers)."""
RETRY_AFTER = 1

# The request headers that travel with a forwarded request (the rest are the hop's own: Host,
# Content-Length, Connection, the internal headers rebuilt below …).
_REQUEST_HEADERS = ("authorization", "content-type", "if-match", "accept", "origin")
# The response headers a client reads; hop-by-hop ones and the owner's framing are left out.
_RESPONSE_HEADERS = frozenset(
    {
        "content-type",
        "location",
        "etag",
        "link",
        "retry-after",
        "cache-control",
        "accept-post",
        "accept-patch",
        "allow",
        "www-authenticate",
        "vary",
        "access-control-allow-origin",
        "access-control-allow-methods",
        "access-control-allow-headers",
        "access-control-expose-headers",
    }
)
CONNECT_TIMEOUT = 2.0
READ_TIMEOUT = 15.0  # a WHEP offer waits for the feed to start and ICE to gather on the owner
MAX_GATHER_BYTES = 8 * 1024 * 1024
"""The most one worker's part of a gathered list (``/api/sessions``, ``/metrics``) may weigh."""


def internal(request: Request, cluster: Cluster | None) -> bool:
    """Whether the request was forwarded by another node (it carries the cluster secret)."""
    return cluster is not None and cluster.trusted(request.headers.get(INTERNAL))


def hops(request: Request, cluster: Cluster | None) -> int:
    """Nodes the request passed before this one (0 unless forwarded with the secret)."""
    if not internal(request, cluster):
        return 0
    try:
        return max(0, int(request.headers.get(HOP, "0")))
    except ValueError:
        return MAX_HOPS  # a node sent nonsense: do not forward it further


def client_ip(request: Request, cluster: Cluster | None) -> str:
    """The original client's address: ``X-Videohub-Client`` from another node, else the socket's."""
    if internal(request, cluster):
        forwarded = request.headers.get(CLIENT, "").strip()
        if forwarded:
            return forwarded[:64]
    return request.client.host if request.client else "unknown"


class WorkerUnavailable(Unavailable):
    """The worker that serves the request did not answer (or the request has hopped too often)."""

    def __init__(self, message: str, worker_id: str | None) -> None:
        super().__init__(message, retry_after=RETRY_AFTER)
        self.worker_id = worker_id


@dataclass(frozen=True)
class Gathered:
    """Every live worker's answer to one internal request: ``answers`` by worker id, and the workers
    that did not answer (down, slow, or not a 200)."""

    answers: dict[str, httpx.Response]
    missing: list[str]


class Router(Part):
    """Sends requests on to other workers: one ``httpx.AsyncClient`` for the process (a ``Part``: it
    opens with the service and closes with it)."""

    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster
        self._client: httpx.AsyncClient | None = None
        self._closing = CloseOnce()

    async def start(self) -> None:
        if self._client is None:
            self._client = httpx.AsyncClient(
                timeout=httpx.Timeout(READ_TIMEOUT, connect=CONNECT_TIMEOUT),
                limits=httpx.Limits(max_connections=200, max_keepalive_connections=50),
                follow_redirects=False,
                trust_env=False,  # never through an HTTP proxy from the environment
            )

    async def close(self) -> None:
        await self._closing.run(self._close)

    async def _close(self) -> None:
        if self._client is not None:
            await self._client.aclose()

    @property
    def client(self) -> httpx.AsyncClient:
        if self._client is None:
            raise Unavailable("the cluster router is not running")
        return self._client

    # -- the headers of one hop ------------------------------------------------------------------

    def internal_headers(self, request: Request | None) -> dict[str, str]:
        """The headers that mark a request from this node: secret, hop count and the client."""
        secret = self.cluster.secret
        headers = {HOP: str(hops(request, self.cluster) + 1 if request is not None else 1)}
        if secret is not None:
            headers[INTERNAL] = secret
        if request is not None:
            headers[CLIENT] = client_ip(request, self.cluster)
        return headers

    def _outgoing(self, request: Request) -> dict[str, str]:
        headers = {name: request.headers[name] for name in _REQUEST_HEADERS if name in request.headers}
        return {**headers, **self.internal_headers(request)}

    # -- forwarding one request -------------------------------------------------------------------

    async def forward(
        self, request: Request, worker: WorkerInfo, *, path: str | None = None, body: bytes | None = None
    ) -> Response:
        """Send ``request`` (its method, path and query, the body already read within the route's limit)
        to ``worker`` and stream its answer back. 503 + Retry-After when it does not answer."""
        if hops(request, self.cluster) >= MAX_HOPS:
            raise WorkerUnavailable("the request passed too many nodes; retry shortly", worker.id)
        content = body if body is not None else await request.body()
        url = worker.address.rstrip("/") + (path or request.url.path)
        if request.url.query:
            url += f"?{request.url.query}"
        outgoing = self.client.build_request(
            request.method, url, headers=self._outgoing(request), content=content
        )
        try:
            answer = await self.client.send(outgoing, stream=True)
        except httpx.TransportError as exc:
            log.warning("worker %s did not answer a forwarded request: %s", worker.id, type(exc).__name__)
            raise WorkerUnavailable(
                f"worker {worker.id} is not answering; retry shortly", worker.id
            ) from None
        response = StreamingResponse(
            _body(answer, worker.id), status_code=answer.status_code, background=BackgroundTask(answer.aclose)
        )
        response.raw_headers.extend(_kept_headers(answer.headers.multi_items()))  # Link may repeat
        return response

    async def elsewhere(self, camera_id: str, stream: str = "main") -> WorkerInfo | None:
        """The worker that serves this camera stream when it is another one; None when it is this one.
        503 when no worker is alive to serve it (only an ``--role api`` node can be left alone)."""
        owner = await self.cluster.owner(camera_id, stream)
        if owner is None:
            if self.cluster.me.role == "api":
                raise WorkerUnavailable("no worker is serving cameras now; retry shortly", None)
            return None
        return None if self.cluster.is_me(owner.id) else owner

    def moved(self, exc: NotOwner) -> WorkerInfo:
        """The worker a ``NotOwner`` names (the lease moved after ``elsewhere`` asked); re-raises it
        when it names none, or this one."""
        if not isinstance(exc.owner, WorkerInfo) or self.cluster.is_me(exc.owner.id):
            raise exc
        return exc.owner

    # -- asking every worker -----------------------------------------------------------------------

    async def gather(self, request: Request, path: str, params: dict[str, str] | None = None) -> Gathered:
        """GET ``path`` with ``local=1`` on every other live worker, at once; this worker is left out
        (the caller adds its own part). A worker that fails or answers other than 200 is missing."""
        others = [w for w in self.cluster.workers() if not self.cluster.is_me(w.id)]
        headers = self._outgoing(request)
        query = {**(params or {}), "local": "1"}
        results = await asyncio.gather(*(self._ask(w, path, query, headers) for w in others))
        answers = {w.id: r for w, r in zip(others, results, strict=True) if r is not None}
        return Gathered(answers, sorted(w.id for w, r in zip(others, results, strict=True) if r is None))

    async def _ask(
        self, worker: WorkerInfo, path: str, params: dict[str, str], headers: dict[str, str]
    ) -> httpx.Response | None:
        url = worker.address.rstrip("/") + path
        try:
            async with self.client.stream("GET", url, params=params, headers=headers) as answer:
                if answer.status_code != 200:
                    log.warning("worker %s answered %s to %s", worker.id, answer.status_code, path)
                    return None
                chunks: list[bytes] = []
                size = 0
                async for chunk in answer.aiter_bytes():
                    size += len(chunk)
                    if size > MAX_GATHER_BYTES:
                        log.warning("worker %s answered more than %d bytes to %s", worker.id, size, path)
                        return None
                    chunks.append(chunk)
                return httpx.Response(200, headers=answer.headers, content=b"".join(chunks))
        except httpx.HTTPError as exc:
            log.warning("worker %s did not answer %s: %s", worker.id, path, type(exc).__name__)
            return None


def _kept_headers(items: Iterable[tuple[str, str]]) -> list[tuple[bytes, bytes]]:
    return [(k.lower().encode(), v.encode()) for k, v in items if k.lower() in _RESPONSE_HEADERS]


async def _body(answer: httpx.Response, worker_id: str) -> AsyncIterator[bytes]:
    try:
        async for chunk in answer.aiter_bytes():
            yield chunk
    except httpx.HTTPError as exc:  # the owner died mid-answer: the client sees a cut body
        log.warning("worker %s stopped answering mid-response: %s", worker_id, type(exc).__name__)


def json_rows(answer: httpx.Response) -> list[dict[str, Any]]:
    """A gathered answer's JSON list (an empty one when it is not a list of objects)."""
    data = answer.json()
    return [row for row in data if isinstance(row, dict)] if isinstance(data, list) else []
