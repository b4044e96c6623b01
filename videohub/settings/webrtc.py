"""The ``webrtc`` settings section: WHEP playback sessions (aiortc).

UDP ports: aiortc 1.16 / aioice 0.13 bind every ICE host candidate to an ephemeral port
(``create_datagram_endpoint(local_addr=(address, 0))``) with no option for a range, so a firewall in
front of videohub must allow the host's ephemeral UDP range (``/proc/sys/net/ipv4/ip_local_port_range``).
There is deliberately no ``port_range`` key: it could not be honoured.
"""

from __future__ import annotations

import ipaddress

from pydantic import Field, SecretStr, field_validator, model_validator

from videohub.settings.base import Section

_ICE_SCHEMES = ("stun:", "stuns:", "turn:", "turns:")


class IceServer(Section):
    """One STUN/TURN server, as in the browser's ``RTCIceServer``."""

    urls: list[str] = Field(
        min_length=1,
        max_length=8,
        description="stun:host[:port] or turn(s):host[:port][?transport=udp|tcp] URLs of one server.",
    )
    username: str | None = Field(None, max_length=256, description="TURN username (TURN only).")
    credential: SecretStr | None = Field(None, max_length=256, description="TURN password (TURN only).")

    @field_validator("urls")
    @classmethod
    def _urls(cls, value: list[str]) -> list[str]:
        for url in value:
            if not url.startswith(_ICE_SCHEMES) or len(url) > 512:
                raise ValueError(f"{url!r} is not a stun:, stuns:, turn: or turns: URL")
        return value

    @property
    def is_turn(self) -> bool:
        return any(url.startswith(("turn:", "turns:")) for url in self.urls)


class WebRTCSettings(Section):
    """WHEP sessions: ICE, timeouts and limits. Every key has a default that suits a LAN."""

    ice_servers: list[IceServer] = Field(
        default_factory=list,
        max_length=4,
        description="STUN/TURN servers the server side uses to gather candidates, also sent to players as "
        "WHEP Link headers. Empty (the default) on a LAN: host candidates only, so no request ever leaves "
        "the site (aiortc would otherwise use a public Google STUN server). aiortc uses at most one STUN "
        "and one TURN server. The UDP ports are ephemeral: aiortc/aioice offer no port range.",
    )
    gather_timeout: float = Field(
        5.0,
        ge=0.5,
        le=30.0,
        description="Seconds to wait for ICE gathering to complete before answering (the answer carries "
        "every candidate, no server-side trickle). Only STUN/TURN servers make gathering slow.",
    )
    feed_start_timeout: float = Field(
        10.0,
        ge=0.5,
        le=60.0,
        description="Seconds a WHEP POST waits for the camera feed's first keyframe (a cold on-demand "
        "camera must connect and reach its next keyframe) before answering 503 with Retry-After.",
    )
    connect_timeout: float = Field(
        10.0,
        ge=2.0,
        le=60.0,
        description="Seconds after the answer within which the player must complete ICE and DTLS; a "
        "session that never connects is ended and frees its pending slot (see max_pending_per_user).",
    )
    disconnect_grace_seconds: float = Field(
        10.0,
        ge=2.0,
        le=25.0,
        description="A connected player that sends nothing (no RTCP) for this long is considered gone "
        "(closed tab, lost network) and its session ends. Players send RTCP about once a second, even "
        "while the camera is silent. Bounded so a vanished viewer is freed within 30 s.",
    )
    max_sessions: int = Field(
        256, ge=1, le=10_000, description="Live WHEP sessions this worker accepts; more answer 503."
    )
    max_sessions_per_user: int = Field(
        64,
        ge=1,
        le=10_000,
        description="Live WHEP sessions of one user on this worker, admins included; more answer 429. "
        "A console and a display of the same user with 16 tiles each hold 32.",
    )
    max_pending_per_user: int = Field(
        16,
        ge=1,
        le=1_000,
        description="Sessions of one user that have not completed ICE yet (offers being answered "
        "included); more answer 429 with Retry-After 1. 16 lets a full 16-tile wall start at once.",
    )
    max_pending: int = Field(
        64,
        ge=1,
        le=10_000,
        description="Sessions of all users that have not completed ICE yet; more answer 503. With "
        "connect_timeout it bounds what offers that never connect can hold.",
    )
    max_remote_candidates: int = Field(
        16,
        ge=1,
        le=256,
        description="Distinct ICE candidates of one player (in its offer and trickled together) the "
        "server sends checks to; more answer 422.",
    )
    allowed_candidate_networks: list[str] = Field(
        default_factory=list,
        max_length=64,
        description="Networks (CIDR) players may be on besides the private, loopback and link-local "
        "ones and the address of the WHEP request itself. Candidates elsewhere are dropped, never "
        "contacted; multicast, broadcast and unspecified addresses always are.",
    )
    retry_after_seconds: int = Field(
        2,
        ge=1,
        le=120,
        description="Retry-After sent with a 503 when a feed cannot start or the worker is full.",
    )
    send_from_ingest: bool = Field(
        True,
        description="After a viewer's first picture, the camera's ingest thread sends its RTP itself "
        "(SRTP, non-blocking UDP) instead of waking the event loop for every frame, which roughly halves "
        "a viewer's CPU. Sessions through a TURN relay always send from the event loop. Off: every "
        "session sends from the event loop.",
    )

    @field_validator("allowed_candidate_networks")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        # Stored normalized (10.1.2.3/16 → 10.1.0.0/16); multicast and the like stay refused inside.
        out = []
        for net in value:
            try:
                out.append(str(ipaddress.ip_network(net.strip(), strict=False)))
            except ValueError:
                raise ValueError(f"{net!r} is not an IP network (CIDR, e.g. 203.0.113.0/24)") from None
        return out

    @model_validator(mode="after")
    def _one_stun_one_turn(self) -> WebRTCSettings:
        # aiortc silently ignores every STUN or TURN server after the first; say so instead.
        stun = [s for s in self.ice_servers if not s.is_turn]
        turn = [s for s in self.ice_servers if s.is_turn]
        if len(stun) > 1 or len(turn) > 1:
            raise ValueError("ice_servers: aiortc uses at most one STUN and one TURN server")
        for server in turn:
            if server.username is None or server.credential is None:
                raise ValueError("ice_servers: a TURN server needs username and credential")
        return self
