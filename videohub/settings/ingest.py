"""Placeholder until its owner fills it."""

from pydantic import BaseModel, ConfigDict


class IngestSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
