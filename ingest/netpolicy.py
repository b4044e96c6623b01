"""Where a camera URL may point: allowed networks and host names, never the service itself.

``NetworkPolicy`` is checked when a URL is registered and again by ingest right before it opens
one. Names are resolved and every address is checked, so a name cannot hide a forbidden address;
ingest then connects to the address it checked (``ingest.url.with_host``), so a DNS answer that
changes between the check and FFmpeg's own lookup cannot move the connection elsewhere.
"""

from __future__ import annotations

import contextlib
import fnmatch
import ipaddress
import socket
from collections.abc import Iterable
from dataclasses import dataclass

from ingest.url import Endpoint, UrlError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

DEFAULT_NETWORKS = (
    "10.0.0.0/8",
    "172.16.0.0/12",
    "192.168.0.0/16",
    "127.0.0.0/8",
    "169.254.0.0/16",
    "::1/128",
    "fc00::/7",
    "fe80::/10",
)
"""RFC 1918 private ranges, loopback and link-local: where a town's cameras live."""


class BlockedUrl(UrlError):
    """The URL is well-formed but points where cameras may not be. ``rule`` names the rule."""

    def __init__(self, message: str, rule: str) -> None:
        super().__init__(message)
        self.rule = rule


def ip_of(text: str) -> IPAddress:
    """The address in ``text``; an IPv4-mapped IPv6 address as the IPv4 address it reaches."""
    address = ipaddress.ip_address(text.split("%", 1)[0])
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped  # ::ffff:127.0.0.1 is 127.0.0.1 on the wire
    return address


def is_local(address: IPAddress) -> bool:
    """Is ``address`` one of this machine's own (loopback, unspecified, or bound to an interface)?"""
    if address.is_loopback or address.is_unspecified:
        return True
    family = socket.AF_INET6 if address.version == 6 else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.bind((str(address), 0))  # only an address of this host can be bound
    except OSError:
        return False
    return True


# RFC 6761 section 6.3: "localhost" and its subdomains are the loopback addresses, answered without
# asking the resolver (a minimal Debian root or container may have no /etc/hosts at all).
LOOPBACK_NAMES = ("127.0.0.1", "::1")


def resolve(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to (in the resolver's order); UrlError when it does not."""
    name = host.lower().rstrip(".")
    if name == "localhost" or name.endswith(".localhost"):
        return list(LOOPBACK_NAMES)
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        raise BlockedUrl(f"host {host} does not resolve", "resolve") from None
    addresses: list[str] = []
    for info in infos:
        address = str(info[4][0]).split("%", 1)[0]
        if address not in addresses:
            addresses.append(address)
    if not addresses:
        raise BlockedUrl(f"host {host} does not resolve", "resolve")
    return addresses


@dataclass(frozen=True, slots=True)
class NetworkPolicy:
    """The networks and host names camera URLs may use, and the service's own endpoints they may not."""

    networks: tuple[IPNetwork, ...]
    hosts: tuple[str, ...] = ()
    """fnmatch patterns for host names (lower-case); empty means any name."""
    service: frozenset[tuple[IPAddress, int]] = frozenset()
    """Exact (address, port) pairs of the service (an external Redis)."""
    service_local_ports: frozenset[int] = frozenset()
    """Ports that belong to the service on every local address (its HTTP port, an embedded store)."""

    @classmethod
    def build(
        cls,
        allowed_networks: Iterable[str] = DEFAULT_NETWORKS,
        allowed_hosts: Iterable[str] = (),
        service: Iterable[tuple[str, int]] = (),
        service_local_ports: Iterable[int] = (),
    ) -> NetworkPolicy:
        return cls(
            networks=tuple(ipaddress.ip_network(n, strict=False) for n in allowed_networks),
            hosts=tuple(h.lower() for h in allowed_hosts),
            service=frozenset((ip_of(a), p) for a, p in service),
            service_local_ports=frozenset(service_local_ports),
        )

    def check_name(self, endpoint: Endpoint) -> None:
        """The host-name part of the check (no DNS)."""
        if self.hosts and not any(fnmatch.fnmatchcase(endpoint.host, p) for p in self.hosts):
            raise BlockedUrl(f"host {endpoint.host} is not in the allowed host list", "allowed_hosts")

    def check_address(self, address: IPAddress, endpoint: Endpoint) -> None:
        if not any(address in network for network in self.networks if network.version == address.version):
            where = str(address) if str(address) == endpoint.host else f"{endpoint.host} ({address})"
            raise BlockedUrl(f"{where} is outside the allowed networks", "allowed_networks")
        if (address, endpoint.port) in self.service or (
            endpoint.port in self.service_local_ports and is_local(address)
        ):
            raise BlockedUrl("the URL points at this videohub service itself", "service")

    def check(self, endpoint: Endpoint) -> list[str]:
        """Check ``endpoint`` (resolving its name) and return its addresses, the one to dial first.

        Blocking (DNS): call it from a thread. Raises BlockedUrl.
        """
        self.check_name(endpoint)
        literal: IPAddress | None = None
        with contextlib.suppress(ValueError):
            literal = ipaddress.ip_address(endpoint.host)
        addresses = [endpoint.host] if literal is not None else resolve(endpoint.host, endpoint.port)
        for text in addresses:
            self.check_address(ip_of(text), endpoint)
        return addresses

    def is_literal(self, endpoint: Endpoint) -> bool:
        """True when checking ``endpoint`` needs no DNS (an IP literal)."""
        try:
            ipaddress.ip_address(endpoint.host)
        except ValueError:
            return False
        return True
