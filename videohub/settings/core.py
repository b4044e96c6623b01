"""Settings sections owned by the service core: server, auth, lines, demo."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from videohub.settings.http import HttpLimitSettings

_SLUG = re.compile(r"^[a-z][a-z0-9_]{1,31}$")
_PREFIX = re.compile(r"^[a-z][a-z0-9]{0,7}$")
_COLOR = re.compile(r"^#[0-9a-fA-F]{6}$")


def default_id_prefix(line_id: str) -> str:
    """The camera id prefix of a line that configures none: its id without '_', cut to 8."""
    return line_id.replace("_", "")[:8]


class Section(BaseModel):
    """Base of every settings section: a misspelled key is an error, not a silent default."""

    model_config = ConfigDict(extra="forbid", frozen=True)


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


class AuthSettings(Section):
    token_ttl_seconds: int = Field(
        12 * 3600, ge=60, le=30 * 24 * 3600, description="Lifetime of a bearer token from /api/auth/login."
    )
    login_max_failures: int = Field(
        5, ge=1, le=1000, description="Failed logins allowed per user and per address within the window."
    )
    login_window_seconds: int = Field(
        300, ge=1, le=86400, description="Window over which failed logins are counted."
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
        if not _SLUG.match(value):
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
