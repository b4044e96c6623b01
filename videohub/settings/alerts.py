"""Settings for alerts: their lifecycle and delivery (signed webhooks and the channels: WeCom,
DingTalk, mail)."""

from __future__ import annotations

import os

from pydantic import Field, SecretStr, field_validator, model_validator

from videohub.settings.base import SLUG, Section
from videohub.settings.channels import Channels, ChannelSettings


class WebhookSettings(Section):
    """One HTTP endpoint that receives alert events for some lines."""

    name: str = Field(description="Stable slug; names the Redis consumer group, so keep it across restarts.")
    url: str = Field(min_length=8, max_length=2048, description="http(s) URL the JSON events are POSTed to.")
    secret: SecretStr | None = Field(
        None, description="HMAC-SHA256 key for X-Videohub-Signature (prefer secret_env)."
    )
    secret_env: str | None = Field(None, description="Name of an environment variable holding the secret.")
    lines: list[str] = Field(
        default_factory=list,
        max_length=100,
        description="Lines whose alerts are sent; empty means all lines.",
    )

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not SLUG.match(value):
            raise ValueError("must be a lowercase slug: letters, digits and _ (2-32 chars)")
        return value

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must be an http:// or https:// URL")
        return value

    @model_validator(mode="after")
    def _secret(self) -> WebhookSettings:
        if self.secret is not None and self.secret_env is not None:
            raise ValueError("give either secret or secret_env, not both")
        if self.secret_env is not None and not os.environ.get(self.secret_env):
            raise ValueError(f"environment variable {self.secret_env} is not set or empty")
        return self

    def secret_bytes(self) -> bytes | None:
        """The signing key, or None when the webhook is unsigned."""
        if self.secret is not None:
            return self.secret.get_secret_value().encode()
        if self.secret_env is not None:
            return os.environ[self.secret_env].encode()
        return None


class AlertSettings(Section):
    """Alerts: history, and delivery to integrators (Redis stream) and webhooks."""

    retention_days: float = Field(
        30.0, ge=1, le=3650, description="Resolved alerts older than this are deleted."
    )
    stream_maxlen: int = Field(
        100_000,
        ge=1000,
        le=10_000_000,
        description="Approximate length the alert event stream (read by integrators, webhooks) is kept at.",
    )
    webhooks: list[WebhookSettings] = Field(
        default_factory=list, max_length=50, description="Webhook endpoints."
    )
    channels: Channels = Field(default_factory=ChannelSettings, description="WeCom, DingTalk and mail.")
    webhook_timeout_seconds: float = Field(5.0, ge=0.5, le=60, description="Timeout of one webhook request.")
    webhook_backoff_initial_seconds: float = Field(
        0.5, ge=0.05, le=60, description="First retry delay after a failed webhook delivery."
    )
    webhook_backoff_max_seconds: float = Field(
        30.0, ge=0.1, le=3600, description="Retry delays double up to this cap."
    )
    webhook_max_attempts: int = Field(
        30,
        ge=1,
        le=10_000,
        description="Attempts per event before it is parked in the webhook's dead-letter stream.",
    )
    webhook_give_up_after_seconds: float = Field(
        600.0,
        ge=1,
        le=7 * 86400,
        description="An event undelivered this long after it was raised is parked (after one attempt).",
    )
    webhook_park_statuses: list[int] = Field(
        default_factory=lambda: [400, 401, 403, 404, 410, 422],
        max_length=100,
        description="HTTP answers a retry cannot change: the event is parked after the first one.",
    )
    webhook_dead_maxlen: int = Field(
        10_000,
        ge=100,
        le=1_000_000,
        description="Parked events kept per webhook (about); the oldest go first.",
    )
    webhook_claim_idle_seconds: float = Field(
        60.0,
        ge=1,
        le=86400,
        description="Events left unacknowledged this long by another worker are taken over.",
    )
    live_buffer: int = Field(
        256,
        ge=1,
        le=100_000,
        description="Events buffered per live UI subscriber before the oldest is dropped.",
    )

    @field_validator("webhook_park_statuses")
    @classmethod
    def _statuses(cls, value: list[int]) -> list[int]:
        if any(not 400 <= code <= 599 for code in value):
            raise ValueError("must be HTTP error statuses (400-599)")
        return sorted(set(value))

    @model_validator(mode="after")
    def _unique(self) -> AlertSettings:
        names = [w.name for w in self.webhooks]
        if len(names) != len(set(names)):
            raise ValueError("webhook names must be unique")
        if self.webhook_backoff_max_seconds < self.webhook_backoff_initial_seconds:
            raise ValueError("webhook_backoff_max_seconds must be >= webhook_backoff_initial_seconds")
        return self
