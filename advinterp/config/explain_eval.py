"""The ``explain_eval`` section of params.yaml: Eqs. 2-3 curves, Table 1 mean ranks, Figures
3-4.
"""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from advinterp.config.core import FigureParams, Section


class ExplainEvalConfig(Section):
    """``explain_eval``: Eqs. 2-3 curves, Table 1 mean ranks, Figures 3-4."""

    section: ClassVar[str | None] = "explain_eval"

    max_superpixels: int = Field(20, ge=1, description="n = 1..this (<= explain.lime_top)")
    figure_examples: int = Field(4, ge=1, description="examples in the Figure 3-style plot")
    overlap_fraction: float = Field(
        0.1, gt=0.0, le=1.0, description="top-pixel share compared between clean and adversarial"
    )
    figure: FigureParams = FigureParams(dpi=72)
