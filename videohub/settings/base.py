"""The one base of every settings section, and the slug rule that names use."""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict

SLUG = re.compile(r"^[a-z][a-z0-9_]{1,31}$")
"""Ids that name Redis keys and consumer groups: lowercase, digits and '_', 2 to 32 long."""


class Section(BaseModel):
    """Base of every settings section: a misspelled key is an error, not a silent default."""

    model_config = ConfigDict(extra="forbid", frozen=True)
