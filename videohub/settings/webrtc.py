"""Placeholder until its owner fills it."""

from pydantic import BaseModel, ConfigDict


class WebRTCSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
