"""The ``distances`` section of params.yaml: Eqs. 8-15 / Figure 5 on the most-changed
attributes.
"""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from advinterp.config.core import FigureParams, Section


class DistancesConfig(Section):
    """``distances``: Eqs. 8-15 / Figure 5 on the most-changed attributes."""

    section: ClassVar[str | None] = "distances"

    eps: float = Field(0.02, gt=0.0, le=1.0, description="budget of the Figure 5 histograms")
    classifier: Literal["sje", "softmax"] = "sje"
    at_model: str = Field("auto", description="AT model key, or auto = nearest training eps")
    fraction: float = Field(0.2, gt=0.0, le=1.0, description="most-changed attributes kept")
    scope: Literal["per_image", "global"] = "per_image"
    normalize: Literal["none", "l2"] = Field(
        "l2", description="l2: predicted attributes to unit norm like φ (SJE leaves scale free)"
    )
    bins: int = Field(20, ge=2)
    figure: FigureParams = FigureParams(dpi=110)
