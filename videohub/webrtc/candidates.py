"""Which of a player's ICE candidates the server may send STUN checks to, and how many.

A remote candidate is an address the server's ICE agent will send packets to. Unchecked, a WHEP
offer or trickle PATCH is a reflection and scanning primitive: "check 10.1.2.3:22, then 10.1.2.4:22
…", with the service's own address as the source. So a candidate is used only if it is

- an IP literal (an mDNS ``.local`` name costs aioice ~1 s to resolve and is dropped silently, as is
  any other host name: resolving it would be a DNS lookup on the player's behalf);
- UDP, on a port of 1024 or above (aioice speaks ICE over UDP only; no well-known service port);
- not multicast, broadcast, unspecified or reserved;
- in a network a player can legitimately be on: private (RFC 1918, IPv6 ULA), loopback, link-local,
  ``webrtc.allowed_candidate_networks``, or the address the WHEP request itself came from.

Others are dropped (never contacted); the player still connects through its own checks (the server
learns a peer-reflexive candidate from them). At most ``webrtc.max_remote_candidates`` distinct
candidates are kept per session, offer and trickle together; more answer 422.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass

from videohub.errors import InvalidField

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

PLAYER_NETWORKS: tuple[IPNetwork, ...] = tuple(
    ipaddress.ip_network(net)
    for net in (
        "10.0.0.0/8",
        "172.16.0.0/12",
        "192.168.0.0/16",
        "127.0.0.0/8",
        "169.254.0.0/16",
        "::1/128",
        "fe80::/10",
        "fc00::/7",
    )
)
"""Where players are by default: private, loopback and link-local networks."""

NEVER: tuple[IPNetwork, ...] = tuple(
    ipaddress.ip_network(net) for net in ("0.0.0.0/8", "224.0.0.0/4", "240.0.0.0/4", "::/128", "ff00::/8")
)
"""Never a player, whatever the configuration says: unspecified, multicast, reserved and broadcast."""

MIN_PORT = 1024

CandidateKey = tuple[str, str, int, int]
"""(transport, address, port, component): two candidates with the same key are one."""


def parse_ip(text: str) -> IPAddress | None:
    """The IP literal ``text`` (an IPv4-mapped IPv6 address as its IPv4), or None for a host name."""
    try:
        address = ipaddress.ip_address(text.strip("[]"))
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


@dataclass(frozen=True)
class CandidatePolicy:
    """The candidate rules of one worker: the networks players may be on and the per-session cap."""

    networks: tuple[IPNetwork, ...]
    max_candidates: int

    @classmethod
    def create(cls, allowed_networks: Iterable[str], max_candidates: int) -> CandidatePolicy:
        extra = tuple(ipaddress.ip_network(net, strict=False) for net in allowed_networks)
        return cls(PLAYER_NETWORKS + extra, max_candidates)

    def allows(self, transport: str, host: str, port: int, client: str | None = None) -> bool:
        """May the server send ICE checks to ``host:port`` for a player whose request came from ``client``?"""
        if transport.lower() != "udp" or not MIN_PORT <= port <= 65535:
            return False
        address = parse_ip(host)
        if address is None:
            return False
        if address == ipaddress.IPv4Address("255.255.255.255") or any(address in net for net in NEVER):
            return False
        if client is not None and address == parse_ip(client):
            return True
        return any(address in net for net in self.networks)

    def check_count(self, count: int) -> None:
        if count > self.max_candidates:
            raise InvalidField(
                ("body",),
                f"more than {self.max_candidates} ICE candidates for one session "
                "(webrtc.max_remote_candidates)",
            )


def candidate_key(transport: str, host: str, port: int, component: int) -> CandidateKey:
    address = parse_ip(host)
    return (transport.lower(), str(address) if address is not None else host.lower(), port, component)


def sdp_candidate(line: str) -> tuple[str, str, int, int] | None:
    """(transport, host, port, component) of an ``a=candidate:`` line, None if it is malformed.

    ``a=candidate:<foundation> <component> <transport> <priority> <address> <port> typ <type> ...``
    """
    parts = line.split()
    if len(parts) < 8:
        return None
    try:
        return parts[2], parts[4], int(parts[5]), int(parts[1])
    except ValueError:
        return None
