"""Settings sections owned by the service core: server, auth, lines, demo."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator

from videohub.settings.base import SLUG, Section
from videohub.settings.http import HttpLimitSettings

_PREFIX = re.compile(r"^[a-z][a-z0-9]{0,7}$")
_COLOR = re.compile(r"^#[0-9a-fA-F]{6}$")
_PUBLIC_URL = re.compile(r"^https?://[A-Za-z0-9._~:/%@\[\]-]+$")  # no query, fragment, space or ( )


def default_id_prefix(line_id: str) -> str:
    """The camera id prefix of a line that configures none: its id without '_', cut to 8."""
    return line_id.replace("_", "")[:8]


class ServerSettings(Section):
    host: str = Field("127.0.0.1", description="Address the HTTP server binds to.")
    port: int = Field(8000, ge=0, le=65535, description="HTTP port (0 picks a free port).")
    data_dir: Path = Field(
        Path("data"), description="Directory for the embedded Valkey's AOF files and other state."
    )
    log_level: Literal["debug", "info", "warning", "error"] = Field("info", description="Log level.")
    log_json: bool = Field(False, description="Write logs as one JSON object per line.")
    cors_origins: list[str] = Field(
        default_factory=list, description="Origins allowed to call the API and WHEP from other sites."
    )
    limits: HttpLimitSettings = Field(
        default_factory=HttpLimitSettings, description="Bodies, timeouts, connections, requests."
    )
    public_url: str | None = Field(
        None,
        max_length=200,
        description="The service's address as users reach it (https://videohub.example.org); alert "
        "messages link to its /health page. Without it they carry no link.",
    )
    metrics_token: SecretStr | None = Field(
        None,
        description="Bearer token a Prometheus scraper sends to read /metrics (set it from the environment, "
        "VIDEOHUB_SERVER__METRICS_TOKEN). Without it only admin and maintenance tokens may read /metrics.",
    )

    @field_validator("public_url")
    @classmethod
    def _public_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = urlsplit(value)
        if (
            not _PUBLIC_URL.match(value)
            or parts.scheme not in ("http", "https")
            or not parts.hostname
            or parts.username is not None
        ):
            raise ValueError("must be an http(s) URL with a host, without user, query or fragment")
        return f"{parts.scheme}://{parts.netloc.lower()}{parts.path.rstrip('/')}"

    @field_validator("metrics_token")
    @classmethod
    def _scrape_token(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not 24 <= len(value.get_secret_value()) <= 256:
            raise ValueError("must be 24 to 256 characters (a short token can be guessed)")
        return value


class AuthSettings(Section):
    token_ttl_seconds: int = Field(
        12 * 3600, ge=60, le=30 * 24 * 3600, description="Lifetime of a bearer token from /api/auth/login."
    )
    login_max_failures: int = Field(
        5,
        ge=1,
        le=1000,
        description="Failed logins of one user from one address before each further attempt from there must "
        "wait 2, 4, 8 … seconds (429, the password is not checked).",
    )
    login_window_seconds: int = Field(
        300,
        ge=1,
        le=86400,
        description="A (user, address) pair's failures are forgotten this long after its last attempt "
        "(or the end of its wait).",
    )
    login_max_delay_seconds: int = Field(
        900,
        ge=1,
        le=86400,
        description="Longest wait the doubling delay of one (user, address) pair reaches.",
    )
    login_address_burst: int = Field(
        20,
        ge=1,
        le=10000,
        description="Failed logins one address may have in hand, whatever the user names: beyond it, 429.",
    )
    login_address_per_minute: float = Field(
        6.0, gt=0, le=6000, description="How fast an address's failed logins are forgiven (per minute)."
    )
    argon2_workers: int = Field(
        2,
        ge=1,
        le=16,
        description="Threads that hash and check passwords (each argon2id check holds its memory).",
    )
    argon2_queue: int = Field(
        8,
        ge=0,
        le=1000,
        description="Password checks that may wait for a thread; more at once are answered 503 at once.",
    )
    min_password_length: int = Field(8, ge=4, le=128, description="Shortest password accepted for a user.")
    argon2_time_cost: int = Field(3, ge=1, le=20, description="argon2id iterations for new password hashes.")
    argon2_memory_kib: int = Field(
        65536, ge=1024, le=1048576, description="argon2id memory (KiB) for new password hashes."
    )


class LineSettings(Section):
    """A department ("line") that owns cameras. Adding a line is configuration only."""

    id: str = Field(description="Stable slug, e.g. public_security.")
    name_zh: str = Field(min_length=1, max_length=32, description="Chinese name shown in the UI, e.g. 公安.")
    name_en: str = Field(min_length=1, max_length=64, description="English name.")
    color: str = Field(description="Colour used for the line's tiles and badges, #rrggbb.")
    id_prefix: str | None = Field(
        None,
        description="Camera ids of this line start with '<id_prefix>-' (1-8 lowercase letters and "
        "digits); a line admin's ids must, and no other line's may. Default: the line id without '_', "
        "cut to 8 characters.",
    )

    @property
    def prefix(self) -> str:
        return self.id_prefix or default_id_prefix(self.id)

    @field_validator("id_prefix")
    @classmethod
    def _prefix(cls, value: str | None) -> str | None:
        if value is not None and not _PREFIX.match(value):
            raise ValueError("must be 1-8 lowercase letters and digits, starting with a letter")
        return value

    @field_validator("id")
    @classmethod
    def _slug(cls, value: str) -> str:
        if not SLUG.match(value):
            raise ValueError(
                "must be a lowercase slug: letters, digits and _ (2-32 chars, starting with a letter)"
            )
        return value

    @field_validator("color")
    @classmethod
    def _color(cls, value: str) -> str:
        if not _COLOR.match(value):
            raise ValueError("must be a colour like #1f6feb")
        return value


class DemoSettings(Section):
    allow_test_sources: bool = Field(
        False, description="Accept file:// and other test-source URLs in the registry (demo and tests only)."
    )
