"""Where camera URLs may point, from the settings and the store's own address.

The registry checks every URL against this ``NetworkPolicy`` before storing it, and ingest checks
again before opening one (``ingest.netpolicy``). Whatever ``ingest.allowed_networks`` says, the
service's own HTTP port (on any local address) and its Redis (the external one's address, the
Sentinels' and the primary's, or any local address on the embedded Valkey's port) are refused: a
URL there is a request the service would send to itself.
"""

from __future__ import annotations

import logging

import redis.asyncio as aioredis

from ingest.netpolicy import NetworkPolicy, ip_of, is_local, resolve
from ingest.url import UrlError
from videohub.redisurl import store_addresses
from videohub.settings import Settings

log = logging.getLogger(__name__)


def network_policy(settings: Settings, redis: aioredis.Redis) -> NetworkPolicy:
    local_ports: set[int] = set()
    if settings.server.port:
        local_ports.add(settings.server.port)
    service: list[tuple[str, int]] = []
    for host, port in store_addresses(redis):  # a unix socket has no address to refuse
        try:
            addresses = resolve(host, port)
        except UrlError:
            log.warning("the Redis host does not resolve; camera URLs cannot be checked against it")
            addresses = []
        for address in addresses:
            if is_local(ip_of(address)):
                local_ports.add(port)
            else:
                service.append((address, port))
    return NetworkPolicy.build(
        settings.ingest.allowed_networks, settings.ingest.allowed_hosts, service, local_ports
    )
