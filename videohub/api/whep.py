"""WHEP (draft-ietf-wish-whep) playback endpoints: the one way to watch a camera.

    OPTIONS /whep/{camera_id}             204, Accept-Post: application/sdp (no auth: CORS preflight)
    HEAD    /whep/{camera_id}             200, Content-Type: application/sdp for a camera the caller may
                                          watch (endpoint discovery, as the WHEP draft asks); 401/404
    POST    /whep/{camera_id}?stream=…    201, Location /whep/sessions/{id}, ETag, body = SDP answer
    OPTIONS /whep/sessions/{id}           204, Accept-Patch: application/trickle-ice-sdpfrag
    PATCH   /whep/sessions/{id}           204 trickle candidates; 422 for an ICE restart (aiortc cannot
                                          restart ICE: the player starts a new session); 412 stale ETag
    DELETE  /whep/sessions/{id}           200

Errors: 400 bad SDP or no video, 413 body over server.limits.sdp_body_bytes, 415 wrong content type,
401 no/bad token, 403 another user's session, 404 unknown camera or one another line owns (the registry
policy hides it), 422 more player ICE candidates than webrtc.max_remote_candidates, 429 + Retry-After
when the user has too many sessions or too many still connecting, 503 + Retry-After when the feed
cannot start or the worker is full. ``?stream=sub`` on a camera without a sub stream plays main,
as a wall tile expects a picture rather than an error.

In a cluster (``Services.router``), a POST that reaches a node other than the camera stream's owner is
proxied to the owner (``cluster.whep_routing = "proxy"``: the answer, Location and ETag come back as the
owner gave them) or answered ``307`` with the owner's URL (``"redirect"``: ``Location:
<owner address>/whep/{camera_id}?stream=…``; a browser's fetch follows it with the same method and
body, but drops Authorization when the owner is another origin, which ``web/common/api.js`` answers by
posting again to the final URL with the token; the owner must then list the wall's origin in
``server.cors_origins``). The session id names the worker that holds it: ``/whep/sessions/<worker
id>.<token>`` (a worker id has no dot, a token none either); PATCH and DELETE of a session held by
another worker go there, and a worker that is no longer alive held nothing any more (404). OPTIONS
answers the same everywhere and is answered where it arrives (a preflight must not depend on a
worker being up). One plain process keeps ``/whep/sessions/<token>``.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Header, Query, Request, Response

from videohub.api.deps import (
    CurrentLogin,
    CurrentUser,
    RouterDep,
    ServicesDep,
    VisibleCamera,
    client_address,
    sessions,
)
from videohub.cluster.routing import Router
from videohub.cluster.workers import WorkerInfo
from videohub.errors import Forbidden, IceRestartUnsupported, InvalidOffer, NotFound, NotOwner
from videohub.models import User
from videohub.services import Services
from videohub.webrtc.manager import SessionManager
from videohub.webrtc.offer import parse_sdpfrag
from videohub.webrtc.session import WhepSession

router = APIRouter(tags=["whep"])

SDP = "application/sdp"
SDPFRAG = "application/trickle-ice-sdpfrag"
_ALLOW_HEADERS = "Authorization, Content-Type, If-Match"
_EXPOSE_HEADERS = "Location, ETag, Link, Accept-Post, Accept-Patch"


def _media_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";", 1)[0].strip().lower()


def _cors(request: Request, svc: Services, methods: str) -> dict[str, str]:
    headers = {
        "Access-Control-Allow-Methods": methods,
        "Access-Control-Allow-Headers": _ALLOW_HEADERS,
        "Access-Control-Expose-Headers": _EXPOSE_HEADERS,
    }
    origin = request.headers.get("origin")
    allowed = svc.settings.server.cors_origins
    if origin and (origin in allowed or "*" in allowed):
        headers["Access-Control-Allow-Origin"] = origin
        headers["Vary"] = "Origin"
    return headers


def _unsupported(expected: str, accept_header: str) -> Response:
    return Response(
        f'{{"detail": "Content-Type must be {expected}"}}',
        status_code=415,
        media_type="application/json",
        headers={accept_header: expected},
    )


def _link_headers(svc: Services) -> list[str]:
    # WHEP players learn the ICE servers from Link headers (draft-ietf-wish-whep, as WHIP).
    links = []
    for server in svc.settings.webrtc.ice_servers:
        for url in server.urls:
            link = f'<{url}>; rel="ice-server"'
            if server.username is not None and server.credential is not None:
                link += (
                    f'; username="{server.username}"; credential="{server.credential.get_secret_value()}"'
                    '; credential-type="password"'
                )
            links.append(link)
    return links


@router.options("/whep/{camera_id}", include_in_schema=False)
async def whep_endpoint_options(request: Request, svc: ServicesDep) -> Response:
    methods = "OPTIONS, HEAD, POST"
    headers = {"Accept-Post": SDP, "Allow": methods, **_cors(request, svc, methods)}
    return Response(status_code=204, headers=headers)


@router.head("/whep/{camera_id}", response_class=Response, include_in_schema=False)
async def whep_endpoint_head(
    request: Request, camera: VisibleCamera, user: CurrentUser, svc: ServicesDep
) -> Response:
    """The endpoint exists and the caller may watch this camera (no session is made, nothing is sent)."""
    methods = "OPTIONS, HEAD, POST"
    headers = {"Content-Type": SDP, "Accept-Post": SDP, "Allow": methods, **_cors(request, svc, methods)}
    response = Response(status_code=200, headers=headers)
    for link in _link_headers(svc):
        response.headers.append("Link", link)
    return response


@router.post(
    "/whep/{camera_id}",
    status_code=201,
    response_class=Response,
    responses={201: {"content": {SDP: {}}, "description": "SDP answer; Location names the session."}},
    openapi_extra={"requestBody": {"required": True, "content": {SDP: {"schema": {"type": "string"}}}}},
)
async def whep_offer(
    request: Request,
    camera: VisibleCamera,
    login: CurrentLogin,
    svc: ServicesDep,
    router: RouterDep,
    stream: Annotated[Literal["main", "sub"], Query(description="main or sub stream")] = "main",
) -> Response:
    """Start watching a camera: the body is the player's SDP offer, the answer holds every candidate."""
    if _media_type(request) != SDP:
        return _unsupported(SDP, "Accept-Post")
    body = await request.body()  # at most server.limits.sdp_body_bytes (videohub/http/bodies.py: 413)
    try:
        offer = body.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidOffer("the SDP offer is not UTF-8 text") from None
    chosen = stream if stream == "main" or camera.streams.sub is not None else "main"
    if router is not None and (owner := await router.elsewhere(camera.id, chosen)) is not None:
        return await _to_owner(request, svc, router, owner, f"/whep/{camera.id}?stream={chosen}", body)
    manager = sessions(svc)
    try:
        session = await manager.create(
            login.user, camera, chosen, offer, client_address(request), token=login.token
        )
    except NotOwner as exc:  # the lease moved between the question and the subscribe
        if router is None:
            raise
        owner = router.moved(exc)
        return await _to_owner(request, svc, router, owner, f"/whep/{camera.id}?stream={chosen}", body)
    headers = {
        "Location": f"/whep/sessions/{_session_ref(router, session.id)}",
        "ETag": session.etag,
        **_cors(request, svc, "OPTIONS, POST"),
    }
    response = Response(session.answer_sdp, status_code=201, media_type=SDP, headers=headers)
    for link in _link_headers(svc):
        response.headers.append("Link", link)
    return response


async def _to_owner(
    request: Request, svc: Services, router: Router, owner: WorkerInfo, path: str, body: bytes
) -> Response:
    """The offer for a camera another worker serves: proxied there, or 307 to it (whep_routing)."""
    if router.cluster.settings.whep_routing == "redirect":
        target = f"{owner.address.rstrip('/')}{path}"
        return Response(status_code=307, headers={"Location": target, **_cors(request, svc, "OPTIONS, POST")})
    return await router.forward(request, owner, body=body)


def _session_ref(router: Router | None, session_id: str) -> str:
    """The session's id in its URL: ``<worker id>.<token>`` in a cluster, the token alone otherwise."""
    return f"{router.cluster.me.id}.{session_id}" if router is not None else session_id


async def _elsewhere(request: Request, router: Router | None, session_ref: str) -> Response | None:
    """The answer of the worker that holds the session when it is another one; None when it is here."""
    worker_id, dot, _ = session_ref.partition(".")
    if router is None or not dot or router.cluster.is_me(worker_id):
        return None
    worker = router.cluster.worker(worker_id)
    if worker is None:  # not alive: its sessions ended with it
        raise NotFound("WHEP session not found")
    return await router.forward(request, worker)


def _local_id(router: Router | None, session_ref: str) -> str:
    if router is None:
        return session_ref
    worker_id, dot, token = session_ref.partition(".")
    if not dot or not router.cluster.is_me(worker_id):
        raise NotFound("WHEP session not found")
    return token


def _owned_session(manager: SessionManager, session_id: str, user: User) -> WhepSession:
    session = manager.require(session_id)
    if session.record.user != user.username and user.role != "admin":
        raise Forbidden("this WHEP session belongs to another user")
    return session


@router.options("/whep/sessions/{session_id}", include_in_schema=False)
async def whep_session_options(request: Request, svc: ServicesDep) -> Response:
    methods = "OPTIONS, PATCH, DELETE"
    headers = {"Accept-Patch": SDPFRAG, "Allow": methods, **_cors(request, svc, methods)}
    return Response(status_code=204, headers=headers)


@router.delete("/whep/sessions/{session_id}", response_class=Response)
async def whep_delete(
    request: Request, session_id: str, user: CurrentUser, svc: ServicesDep, router: RouterDep
) -> Response:
    """Stop watching (the session's owner, or an admin)."""
    if (forwarded := await _elsewhere(request, router, session_id)) is not None:
        return forwarded
    manager = sessions(svc)
    session_id = _local_id(router, session_id)
    session = _owned_session(manager, session_id, user)
    reason = "deleted" if session.record.user == user.username else "deleted_by_admin"
    await manager.end(session_id, reason)
    return Response(status_code=200, headers=_cors(request, svc, "OPTIONS, PATCH, DELETE"))


@router.patch(
    "/whep/sessions/{session_id}",
    response_class=Response,
    status_code=204,
    openapi_extra={"requestBody": {"required": True, "content": {SDPFRAG: {"schema": {"type": "string"}}}}},
)
async def whep_patch(
    request: Request,
    session_id: str,
    user: CurrentUser,
    svc: ServicesDep,
    router: RouterDep,
    if_match: Annotated[str | None, Header()] = None,
) -> Response:
    """Trickle ICE candidates to a session (RFC 8840 fragment). ICE restart is answered 422."""
    if (forwarded := await _elsewhere(request, router, session_id)) is not None:
        return forwarded
    manager = sessions(svc)
    session = _owned_session(manager, _local_id(router, session_id), user)
    if _media_type(request) != SDPFRAG:
        return _unsupported(SDPFRAG, "Accept-Patch")
    if if_match is not None and if_match.strip() == "*":
        raise IceRestartUnsupported("ICE restart is not supported: start a new session")
    if if_match is not None and if_match.strip() != session.etag:
        return Response(status_code=412, headers=_cors(request, svc, "OPTIONS, PATCH, DELETE"))
    body = await request.body()  # at most server.limits.sdp_body_bytes (413)
    try:
        frag = parse_sdpfrag(body.decode("utf-8"))
    except UnicodeDecodeError:
        raise InvalidOffer("the fragment is not UTF-8 text") from None
    await manager.trickle(session, frag)
    return Response(status_code=204, headers=_cors(request, svc, "OPTIONS, PATCH, DELETE"))
