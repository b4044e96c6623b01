"""The ``store`` and ``ws`` settings sections: the Redis connection pool, the embedded Valkey's
watchdog, and the bounds of the ``/ws`` live-event sockets."""

from __future__ import annotations

from pydantic import Field

from videohub.settings.base import Section


class StoreSettings(Section):
    max_connections: int = Field(
        64,
        ge=4,
        le=10_000,
        description="Redis connections this process may open. A burst beyond it waits up to "
        "pool_timeout_seconds for a free one, then answers 503.",
    )
    pool_timeout_seconds: float = Field(
        3.0, gt=0, le=60, description="Seconds a request waits for a free Redis connection before 503."
    )
    socket_timeout_seconds: float = Field(
        5.0,
        ge=2.0,
        le=60,
        description="Seconds one Redis command may take before it fails (above the 1 s blocking reads).",
    )
    connect_timeout_seconds: float = Field(
        2.0, gt=0, le=60, description="Seconds to open a connection to Redis."
    )
    replica_wait_ms: int = Field(
        200,
        ge=0,
        le=10_000,
        description="With a redis+sentinel:// URL: milliseconds a transaction (users, cameras, walls) "
        "waits for one replica to hold it (WAIT 1 <ms>) before it is acknowledged; 0 turns it off. "
        "Without a replica the wait is skipped, so writes go on with the primary alone.",
    )
    watchdog_interval_seconds: float = Field(
        0.5,
        ge=0.1,
        le=10,
        description="How often the embedded Valkey's process is checked; a dead one is restarted at once.",
    )


class WsSettings(Section):
    max_connections: int = Field(
        1000,
        ge=1,
        le=100_000,
        description="Open /ws sockets this process accepts; more are closed with 1013 (try again later).",
    )
    max_connections_per_user: int = Field(
        20, ge=1, le=10_000, description="Open /ws sockets per user; more are closed with 4429."
    )
    max_message_bytes: int = Field(
        4096,
        ge=256,
        le=1_048_576,
        description="Largest message a client may send; a larger one closes the socket with 1009.",
    )
    max_messages_per_second: int = Field(
        20,
        ge=1,
        le=10_000,
        description="Messages a client may send per second (bursts up to the same number); more "
        "close the socket with 1008.",
    )
