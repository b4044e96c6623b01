"""Settings of the audit trail."""

from __future__ import annotations

from pydantic import Field

from videohub.settings.base import Section


class AuditSettings(Section):
    retention_days: float = Field(
        180.0,
        ge=1.0,
        le=3650.0,
        description="Audit entries are kept this long, whatever their number: older ones are removed as new "
        "ones are written, so a burst of entries (viewing sessions) never pushes a recent one out.",
    )
