"""The ``igan_explain`` section of params.yaml: Figures 3/5 rows for natural and PGD images,
beside captum baselines.
"""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from advinterp.config.core import FigureParams, Section


class IganExplainConfig(Section):
    """``igan_explain``: Figures 3/5 rows for natural and PGD images, beside captum baselines."""

    section: ClassVar[str | None] = "igan_explain"

    examples: int = Field(3, ge=1, description="correctly classified test images shown")
    eps: float = Field(0.03, gt=0.0, le=1.0, description="PGD L-inf budget, pixel units")
    steps: int = Field(40, ge=1, description="PGD steps (paper: PGD-40)")
    ig_steps: int = Field(32, ge=2, description="integrated-gradients path steps")
    occlusion_window: int = Field(8, ge=1, description="occluding square side, pixels")
    occlusion_stride: int = Field(4, ge=1)
    figure: FigureParams = FigureParams(dpi=100)
