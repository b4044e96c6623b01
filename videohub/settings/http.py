"""The ``server.limits`` settings: what one HTTP client may cost the service (bodies, time, sockets).

Every limit is enforced before the work it bounds: a body is refused by its ``Content-Length`` before
it is read and counted while it streams, a connection that has not sent its headers in time is
closed, and a full server answers 503 with ``Retry-After`` instead of queueing.
"""

from __future__ import annotations

from pydantic import Field

from videohub.settings.base import Section

KIB = 1024
MIB = 1024 * 1024


class HttpLimitSettings(Section):
    """Bodies per kind of route, header/body/keep-alive timeouts, connection and request caps."""

    sdp_body_bytes: int = Field(
        64 * KIB,
        ge=4 * KIB,
        le=64 * KIB,  # the SDP parser's own ceiling (videohub/webrtc/offer.py MAX_SDP_BYTES)
        description="Largest body of a WHEP offer (POST /whep/…) or trickle fragment "
        "(PATCH /whep/sessions/…).",
    )
    csv_body_bytes: int = Field(
        5 * MIB, ge=64 * KIB, le=64 * MIB, description="Largest CSV body of POST /api/cameras/import."
    )
    json_body_bytes: int = Field(
        1 * MIB, ge=16 * KIB, le=16 * MIB, description="Largest body of the other /api/ routes (JSON)."
    )
    other_body_bytes: int = Field(
        16 * KIB,
        ge=1 * KIB,
        le=1 * MIB,
        description="Largest body of every other route, login and token routes included.",
    )
    body_timeout: float = Field(
        30.0,
        ge=1.0,
        le=600.0,
        description="Seconds a request may take to send its whole body; a slower one answers 408 and its "
        "connection is closed (a body dripped a byte at a time cannot hold a request slot).",
    )
    header_timeout: float = Field(
        10.0,
        ge=1.0,
        le=120.0,
        description="Seconds a connection may take to send a complete request line and headers, from "
        "its first byte (or from its opening); then it is closed (slowloris).",
    )
    keepalive_timeout: int = Field(
        5, ge=1, le=300, description="Seconds an idle keep-alive connection is kept open."
    )
    max_connections: int = Field(
        1000,
        ge=8,
        le=100_000,
        description="Open HTTP connections (WebSockets not counted); a request on a connection beyond "
        "this answers 503 with Retry-After and the connection is closed.",
    )
    max_requests: int = Field(
        256,
        ge=4,
        le=100_000,
        description="HTTP requests handled at once (WebSockets and /healthz not counted); more answer "
        "503 with Retry-After.",
    )
    retry_after_seconds: int = Field(
        2, ge=1, le=120, description="Retry-After sent with the 503 of a full server."
    )
