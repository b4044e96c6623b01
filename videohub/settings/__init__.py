"""videohub's configuration: one pydantic tree, read from a YAML file and ``VIDEOHUB_*`` variables.

Precedence, highest first: environment (``VIDEOHUB_REDIS_URL``, ``VIDEOHUB_SERVER__PORT`` …), then the
YAML file (default: ``config/videohub.yaml`` shipped with the package). Every section forbids unknown
keys, so a misspelled key stops the service instead of being ignored (see ``videohub validate-config``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from videohub.errors import ConfigError
from videohub.redisurl import check_redis_url
from videohub.resources import default_config_path
from videohub.settings.alerts import AlertSettings
from videohub.settings.audit import AuditSettings
from videohub.settings.cluster import ClusterSettings
from videohub.settings.core import AuthSettings, DemoSettings, LineSettings, ServerSettings
from videohub.settings.health import HealthSettings
from videohub.settings.ingest import IngestSettings
from videohub.settings.store import StoreSettings, WsSettings
from videohub.settings.webrtc import WebRTCSettings

__all__ = [
    "AlertSettings",
    "AuditSettings",
    "AuthSettings",
    "ConfigError",
    "DemoSettings",
    "HealthSettings",
    "IngestSettings",
    "LineSettings",
    "ServerSettings",
    "Settings",
    "StoreSettings",
    "WebRTCSettings",
    "WsSettings",
    "load_settings",
]


class Settings(BaseSettings):
    """The root of the configuration tree."""

    model_config = SettingsConfigDict(
        env_prefix="VIDEOHUB_", env_nested_delimiter="__", extra="forbid", frozen=True
    )

    redis_url: str | None = Field(
        None,
        description="External Redis/Valkey URL (redis://host:port/db), or its Sentinels "
        "(redis+sentinel://host1:26379,host2:26379/<service>[/db]). Without it an embedded Valkey is "
        "started with AOF persistence under server.data_dir.",
    )
    admin_password: SecretStr | None = Field(
        None,
        description="Password for user 'admin', created at first start when no admin exists. Without it a "
        "random password is printed once.",
    )
    server: ServerSettings = Field(default_factory=ServerSettings, description="HTTP server and logging.")
    auth: AuthSettings = Field(default_factory=AuthSettings, description="Logins and tokens.")
    lines: list[LineSettings] = Field(
        default_factory=list, min_length=1, description="The departments that own cameras."
    )
    demo: DemoSettings = Field(default_factory=DemoSettings, description="Demo-only switches.")
    ingest: IngestSettings = Field(default_factory=IngestSettings, description="Pulling camera streams.")
    webrtc: WebRTCSettings = Field(default_factory=WebRTCSettings, description="WHEP playback.")
    health: HealthSettings = Field(default_factory=HealthSettings, description="Feed health checks.")
    alerts: AlertSettings = Field(default_factory=AlertSettings, description="Alerts and their delivery.")
    store: StoreSettings = Field(
        default_factory=StoreSettings, description="Redis connection pool and the embedded Valkey's watchdog."
    )
    ws: WsSettings = Field(default_factory=WsSettings, description="Bounds of the /ws live-event sockets.")
    audit: AuditSettings = Field(default_factory=AuditSettings, description="The audit trail.")
    cluster: ClusterSettings = Field(
        default_factory=ClusterSettings, description="Workers sharing the cameras through Redis leases."
    )

    @field_validator("redis_url")
    @classmethod
    def _usable_redis_url(cls, url: str | None) -> str | None:
        if url is not None:
            check_redis_url(url)  # its message names the part that is wrong, never the password
        return url

    @model_validator(mode="after")
    def _unique_lines(self) -> Settings:
        seen: set[str] = set()
        prefixes: set[str] = set()
        for line in self.lines:
            if line.id in seen:
                raise ValueError(f"lines: duplicate line id {line.id!r}")
            if line.prefix in prefixes:
                raise ValueError(f"lines: line {line.id!r} has the id_prefix {line.prefix!r} of another line")
            seen.add(line.id)
            prefixes.add(line.prefix)
        return self

    def line(self, line_id: str) -> LineSettings | None:
        return next((line for line in self.lines if line.id == line_id), None)

    @property
    def line_ids(self) -> list[str]:
        return [line.id for line in self.lines]

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # The YAML file arrives as init kwargs; the environment overrides it.
        return (env_settings, init_settings)


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(str(path), [("(file)", f"cannot read: {exc.strerror or exc}")]) from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(str(path), [("(file)", f"not valid YAML: {exc}")]) from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(str(path), [("(file)", "the top level must be a mapping of sections")])
    return data


def load_settings(config_file: Path | None = None, **overrides: Any) -> Settings:
    """Read the YAML file (default: the packaged ``config/videohub.yaml``) plus the environment.

    ``overrides`` (from command-line flags) replace top-level sections' keys after the file is read.
    Raises ConfigError naming every bad key path.
    """
    path = config_file or default_config_path()
    data = _read_yaml(path)
    for dotted, value in overrides.items():
        section, _, key = dotted.partition("__")
        if key:
            data.setdefault(section, {})
            if isinstance(data[section], dict):
                data[section][key] = value
        else:
            data[section] = value
    try:
        return Settings(**data)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            loc = ".".join(str(part) for part in err["loc"]) or "(root)"
            msg = err["msg"].removeprefix("Value error, ")
            if err["type"] == "extra_forbidden":
                msg = "unknown key (misspelled?)"
            problems.append((loc, msg))
        raise ConfigError(str(path), problems) from exc
