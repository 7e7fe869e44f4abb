"""The ``sje`` section of params.yaml: structured joint embedding (Eqs. 3-6) on θ(x) of each
model.
"""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from advinterp.config.core import Section


class SjeConfig(Section):
    """``sje``: structured joint embedding (Eqs. 3-6) on θ(x) of each model."""

    section: ClassVar[str | None] = "sje"

    center: bool = Field(True, description="mean-centre class attributes before l2")
    feature_norm: Literal["none", "l2"] = "l2"
    margin: float = Field(1.0, gt=0.0, description="Δ(y_n, y) for a wrong class")
    lr: float = Field(
        10.0, gt=0.0, description="Eq. 6 step η; from W = 0 only the ratio lr / margin matters"
    )
    epochs: int = Field(100, ge=1)
    batch_size: int = Field(64, ge=1)
    patience: int = Field(15, ge=1, description="epochs without val improvement before stopping")
