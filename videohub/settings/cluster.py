"""The ``cluster`` settings section: this worker's identity and the leases that share the cameras.

``videohub serve --workers N`` and ``--role`` set ``enabled``, ``role`` and ``worker_id`` for each
worker process it starts; on many machines each ``--role worker`` node sets ``advertise_host`` to the
address the other nodes reach it on, and every node shares one ``secret``.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, SecretStr, field_validator

from videohub.settings.base import Section

WORKER_ID = re.compile(r"^[a-z0-9][a-z0-9-]{0,31}$")


class ClusterSettings(Section):
    enabled: bool = Field(
        False,
        description="Share the cameras with other workers through Redis leases (set by `serve --workers` "
        "and `--role`; a single process without it owns every camera).",
    )
    role: Literal["all", "api", "worker"] = Field(
        "all",
        description="all: serve the API and ingest cameras; api: serve the API and route playback to the "
        "workers, ingest nothing; worker: ingest cameras and serve their viewers (and the API too).",
    )
    worker_id: str | None = Field(
        None,
        description="This worker's id (lowercase letters, digits and '-', at most 32); default: "
        "<hostname>-<pid>.",
    )
    advertise_host: str = Field(
        "127.0.0.1",
        max_length=253,
        description="The address other nodes reach this worker's internal HTTP port on.",
    )
    internal_port: int = Field(
        0, ge=0, le=65535, description="This worker's internal HTTP port (0 picks a free one)."
    )
    capacity: float = Field(
        1.0,
        gt=0,
        le=1000,
        description="This worker's weight in placement: a worker of capacity 2 gets twice the cameras.",
    )
    heartbeat_ttl_ms: int = Field(
        3000, ge=500, le=60_000, description="A worker whose heartbeat is older than this is gone."
    )
    lease_ttl_ms: int = Field(
        4000,
        ge=500,
        le=60_000,
        description="A camera stream's lease lapses this long after its owner last renewed it (renewed "
        "every third of it); a dead worker's cameras move after about this long.",
    )
    handover_timeout_seconds: float = Field(
        5.0,
        ge=0.5,
        le=60,
        description="On SIGTERM, how long a draining worker keeps a stream for its new owner's first "
        "picture before it lets go anyway.",
    )
    whep_routing: Literal["proxy", "redirect"] = Field(
        "proxy",
        description="A WHEP request that reaches a node other than the camera's owner: proxy the SDP "
        "exchange to the owner, or answer 307 with the owner's URL (workers reachable by the players).",
    )
    secret: SecretStr | None = Field(
        None,
        description="Shared by every node of the cluster (VIDEOHUB_CLUSTER__SECRET): marks the requests "
        "one node forwards to another. `serve --workers` makes one for its own workers.",
    )

    @field_validator("worker_id")
    @classmethod
    def _worker_id(cls, value: str | None) -> str | None:
        if value is not None and not WORKER_ID.match(value):
            raise ValueError("lowercase letters, digits and '-', starting with a letter or digit, at most 32")
        return value
