"""The base of every config model."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Strict(BaseModel):
    """A config section: unknown keys are errors (named in the message), values are frozen."""

    model_config = ConfigDict(extra="forbid", frozen=True)
