"""The registry's and users' data shapes: what the API accepts, what it stores, what it returns.

Credentials never travel in these output models: a stored camera's URLs carry no userinfo and its
password lives apart (``Credentials``), returned to nobody.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Literal
from urllib.parse import unquote, urlsplit, urlunsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

Role = Literal["admin", "operator", "line_admin", "maintenance"]
ROLES: tuple[Role, ...] = ("admin", "operator", "line_admin", "maintenance")
Mode = Literal["always_on", "on_demand"]
Transport = Literal["tcp", "udp"]

NETWORK_SCHEMES = frozenset({"rtsp", "rtsps", "rtmp", "http", "https"})
TEST_SCHEMES = frozenset({"file"})
CAMERA_ID = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
USERNAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{1,31}$")

Text = Annotated[str, Field(max_length=200)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


def split_userinfo(url: str) -> tuple[str, str | None, str | None]:
    """Return the URL without userinfo, and the username and password it carried (percent-decoded)."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url, None, None
    host = parts.hostname or ""
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    netloc = host if parts.port is None else f"{host}:{parts.port}"
    clean = urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))
    user = unquote(parts.username) if parts.username is not None else None
    password = unquote(parts.password) if parts.password is not None else None
    return clean, user, password


def redact_url(url: str) -> str:
    """The URL with any userinfo removed (for responses and logs)."""
    return split_userinfo(url)[0]


class StreamSpec(Strict):
    url: str = Field(min_length=3, max_length=2048, description="Stream URL; userinfo is split off on save.")
    transport: Transport = Field("tcp", description="RTSP transport.")

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        value = value.strip()
        parts = urlsplit(value)
        scheme = parts.scheme.lower()
        if scheme not in NETWORK_SCHEMES | TEST_SCHEMES:
            allowed = ", ".join(sorted(NETWORK_SCHEMES))
            raise ValueError(f"unsupported URL scheme {scheme or '(none)'!r}; use one of {allowed}")
        if scheme in NETWORK_SCHEMES and not parts.hostname:
            raise ValueError("URL has no host")
        if scheme == "file" and not parts.path:
            raise ValueError("file URL has no path")
        try:
            parts.port  # noqa: B018 - raises on a bad port
        except ValueError as exc:
            raise ValueError(f"bad port in URL: {exc}") from None
        return value


class Streams(Strict):
    main: StreamSpec
    sub: StreamSpec | None = None


class Location(Strict):
    lat: float = Field(ge=-90, le=90, description="Latitude, degrees.")
    lon: float = Field(ge=-180, le=180, description="Longitude, degrees.")
    address: str | None = Field(None, max_length=200)


class CredentialsIn(Strict):
    username: str = Field(min_length=1, max_length=128)
    password: SecretStr = Field(min_length=0, max_length=256)


class Credentials(BaseModel):
    username: str
    password: SecretStr


class CameraFields(Strict):
    """Fields shared by create and stored shapes."""

    name: str = Field(min_length=1, max_length=64, description="Display name (Chinese allowed).")
    line: str = Field(min_length=1, max_length=32, description="Owning line id.")
    area: str = Field("", max_length=64, description="Town / grid cell, free text.")
    location: Location | None = None
    streams: Streams
    mode: Mode = "always_on"
    enabled: bool = True
    tags: list[Annotated[str, Field(min_length=1, max_length=32)]] = Field(
        default_factory=list, max_length=32
    )
    vendor: str | None = Field(None, max_length=64)
    model: str | None = Field(None, max_length=64)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        value = value.strip()
        if not value:
            raise ValueError("name is blank")
        return value


class CameraCreate(CameraFields):
    id: str | None = Field(None, description="Slug; generated when absent.")
    credentials: CredentialsIn | None = None

    @field_validator("id")
    @classmethod
    def _id(cls, value: str | None) -> str | None:
        if value is not None and not CAMERA_ID.match(value):
            raise ValueError("id must be 1-64 chars of a-z, 0-9, '_' or '-', starting with a letter or digit")
        return value


class CameraPatch(Strict):
    """Partial update: only the fields present change. ``credentials: null`` removes them."""

    name: str | None = Field(None, min_length=1, max_length=64)
    line: str | None = Field(None, min_length=1, max_length=32)
    area: str | None = Field(None, max_length=64)
    location: Location | None = None
    streams: Streams | None = None
    mode: Mode | None = None
    enabled: bool | None = None
    tags: list[Annotated[str, Field(min_length=1, max_length=32)]] | None = Field(None, max_length=32)
    vendor: str | None = Field(None, max_length=64)
    model: str | None = Field(None, max_length=64)
    credentials: CredentialsIn | None = None


class Camera(CameraFields):
    """A registered camera as stored (URLs without userinfo) and returned."""

    model_config = ConfigDict(extra="forbid")

    id: str
    has_credentials: bool = False
    created_at: datetime
    updated_at: datetime


class CameraPage(BaseModel):
    items: list[Camera]
    total: int
    limit: int
    offset: int


class ImportRow(BaseModel):
    row: int = Field(description="1-based data row number (the header is row 0).")
    ok: bool
    id: str | None = None
    status: int = Field(description="HTTP-like status of this row: 201, 409, 422, 403.")
    error: str | None = None


class ImportResult(BaseModel):
    created: int
    failed: int
    rows: list[ImportRow]


class LineOut(BaseModel):
    id: str
    name_zh: str
    name_en: str
    color: str
    cameras: int


class User(BaseModel):
    username: str
    role: Role
    line: str | None = None
    created_at: datetime | None = None


class UserCreate(Strict):
    username: str = Field(min_length=2, max_length=32)
    password: SecretStr
    role: Role
    line: str | None = Field(None, description="Required for line_admin, forbidden for the other roles.")

    @field_validator("username")
    @classmethod
    def _username(cls, value: str) -> str:
        if not USERNAME.match(value):
            raise ValueError("username must be 2-32 chars of letters, digits, '_', '.', '-'")
        return value


class PasswordChange(Strict):
    password: SecretStr


class LoginRequest(Strict):
    username: str = Field(min_length=1, max_length=64)
    password: SecretStr = Field(max_length=256)


class TokenOut(BaseModel):
    access_token: str
    token_type: Literal["bearer"] = "bearer"
    expires_at: datetime
    user: User


class AuditEntry(BaseModel):
    id: str
    ts: datetime
    actor: str
    action: str
    target: str
    before: dict[str, object] | None = None
    after: dict[str, object] | None = None


class AuditPage(BaseModel):
    items: list[AuditEntry]
    next_before: str | None = Field(None, description="Pass as `before` to get the next (older) page.")
