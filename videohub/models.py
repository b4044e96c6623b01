"""The registry's and users' data shapes: what the API accepts, what it stores, what it returns.

Credentials never travel in these output models: a stored camera's URLs carry no userinfo and
``***`` in place of credential parameters, and the secrets live apart (``videohub.registry``),
returned to nobody. Every URL goes through ``ingest.url.parse_url``, the check ingest applies again
before it opens one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from ingest.url import UrlError, parse_url

Role = Literal["admin", "operator", "line_admin", "maintenance"]
ROLES: tuple[Role, ...] = ("admin", "operator", "line_admin", "maintenance")
Mode = Literal["always_on", "on_demand"]
Transport = Literal["tcp", "udp"]

CAMERA_ID = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
USERNAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{1,31}$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")

Text = Annotated[str, Field(max_length=200)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _checked_url(value: str) -> str:
    try:
        parse_url(value)
    except UrlError as exc:
        raise ValueError(str(exc)) from None
    return value


def stored_url(value: str) -> str:
    """The stored form of a URL: normalized, no userinfo, ``***`` for credential parameters."""
    try:
        return parse_url(value).url
    except UrlError as exc:
        raise ValueError(str(exc)) from None


def redact_url(url: str) -> str:
    """The URL without any secret (for responses and logs)."""
    return stored_url(url)


class CredentialsIn(Strict):
    username: str = Field(min_length=1, max_length=128)
    password: SecretStr = Field(min_length=0, max_length=256)

    @field_validator("username")
    @classmethod
    def _username(cls, value: str) -> str:
        # FFmpeg writes the user name into a Digest Authorization header as it is.
        if _CONTROL.search(value):
            raise ValueError("user name contains a control character")
        return value

    @field_validator("password")
    @classmethod
    def _password(cls, value: SecretStr) -> SecretStr:
        if _CONTROL.search(value.get_secret_value()):
            raise ValueError("password contains a control character")
        return value


class StreamSpec(Strict):
    """One stream as a request gives it. The URL may carry credentials; they are split off on save."""

    url: str = Field(
        min_length=3,
        max_length=2048,
        description="Stream URL (rtsp, rtsps, rtmp, http, https). Userinfo and credential parameters "
        "(user=, password= … in the path or query) are split off on save and shown as ***; send *** "
        "back to keep a stored value.",
    )
    transport: Transport = Field("tcp", description="RTSP transport.")
    credentials: CredentialsIn | None = Field(
        None,
        description="This stream's credentials. Left out of an edit, they are kept while the scheme, "
        "host and port stay the same, and cleared otherwise; null removes them.",
    )

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        return _checked_url(value)


class CameraStream(Strict):
    """One stream as stored and returned: the URL without secrets."""

    url: str = Field(description="Stream URL without credentials (*** for credential parameters).")
    transport: Transport = Field("tcp", description="RTSP transport.")
    has_credentials: bool = Field(False, description="A user name and password are stored for it.")

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        return stored_url(value)


class CameraStreams(Strict):
    main: CameraStream
    sub: CameraStream | None = None


class Streams(Strict):
    main: StreamSpec
    sub: StreamSpec | None = None


class Location(Strict):
    lat: float = Field(ge=-90, le=90, description="Latitude, degrees.")
    lon: float = Field(ge=-180, le=180, description="Longitude, degrees.")
    address: str | None = Field(None, max_length=200)


class Credentials(BaseModel):
    username: str
    password: SecretStr


class CameraFields(Strict):
    """Fields shared by create and stored shapes."""

    name: str = Field(min_length=1, max_length=64, description="Display name (Chinese allowed).")
    line: str = Field(min_length=1, max_length=32, description="Owning line id.")
    area: str = Field("", max_length=64, description="Town / grid cell, free text.")
    location: Location | None = None
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
    id: str | None = Field(
        None,
        description="Slug; generated as <line prefix>-<random> when absent. A line admin's ids start "
        "with its line's prefix; an id with another line's prefix is refused.",
    )
    streams: Streams
    credentials: CredentialsIn | None = Field(
        None, description="The main stream's credentials (same as streams.main.credentials)."
    )

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
    credentials: CredentialsIn | None = Field(
        None, description="The main stream's credentials; null removes them."
    )


class Camera(CameraFields):
    """A registered camera as stored (URLs without secrets) and returned."""

    model_config = ConfigDict(extra="forbid")

    id: str
    streams: CameraStreams
    has_credentials: bool = Field(False, description="The main stream has stored credentials.")
    created_at: datetime
    updated_at: datetime

    @field_validator("streams", mode="before")
    @classmethod
    def _from_request_shape(cls, value: object) -> object:
        # A request's Streams (code and tests build cameras from them) holds no stored secrets.
        if isinstance(value, Streams):
            if any(s is not None and s.credentials is not None for s in (value.main, value.sub)):
                raise ValueError("a stored camera's streams carry no credentials")
            return value.model_dump(exclude={"main": {"credentials"}, "sub": {"credentials"}})
        return value

    @model_validator(mode="after")
    def _legacy_flags(self) -> Camera:
        # Records from before per-stream credentials: the camera's credentials were the main
        # stream's, and the sub stream's too on the same host (videohub.registry reads them so).
        main, sub = self.streams.main, self.streams.sub
        if self.has_credentials and not main.has_credentials:
            main.has_credentials = True
            if sub is not None and not sub.has_credentials and _same_endpoint(main.url, sub.url):
                sub.has_credentials = True
        return self


def _same_endpoint(a: str, b: str) -> bool:
    try:
        return parse_url(a).endpoint == parse_url(b).endpoint
    except UrlError:
        return False


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
    id_prefix: str = Field(description="Camera ids of this line start with '<id_prefix>-'.")
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


@dataclass(frozen=True, slots=True)
class RegistryChange:
    """One put or delete of a camera, from any worker (the registry's change feed)."""

    op: Literal["put", "delete"]
    id: str
