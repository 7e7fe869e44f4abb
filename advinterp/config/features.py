"""The ``features`` section of params.yaml: penultimate-layer features θ(x)."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from advinterp.config.core import Section


class FeaturesConfig(Section):
    """``features``: penultimate-layer features θ(x)."""

    section: ClassVar[str | None] = "features"

    batch_size: int = Field(128, ge=1)
