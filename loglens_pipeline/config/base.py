"""What every config model shares: unknown keys are errors, values are immutable."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

NAME_PATTERN = r"^[a-z][a-z0-9_]{0,62}$"


class StrictModel(BaseModel):
    """Unknown keys are errors: a typo in YAML must not be silently ignored."""

    model_config = ConfigDict(extra="forbid", frozen=True)
