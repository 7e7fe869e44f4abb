"""The ``a2e_explain`` section of params.yaml: perturbations that explain the standard and a
second classifier.
"""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field, model_validator

from advinterp.config.a2e import A2EAttackParams
from advinterp.config.classes import ClassDraw, ClassList, ClassRef
from advinterp.config.core import FigureParams, Section


class A2ERegionConfig(Section):
    """``a2e_explain.region``: region-specific semantics (Fig. 4)."""

    target: ClassRef | None = Field(
        None, description="class index or name (advinterp.config.classes); null = the first target"
    )
    size: float = Field(0.29, gt=0.0, le=1.0, description="patch side / image side [64 px of 224]")
    positions: list[tuple[float, float]] = Field(
        [(0.1, 0.1), (0.35, 0.6), (0.6, 0.2)],
        description="(top, left) of each patch as fractions of the image side",
    )

    @model_validator(mode="after")
    def _check(self) -> A2ERegionConfig:
        for top, left in self.positions:
            if not (0.0 <= top <= 1.0 - self.size and 0.0 <= left <= 1.0 - self.size):
                raise ValueError("every patch must lie inside the image: 0 <= pos <= 1 - size")
        return self


class A2EExplainConfig(Section):
    """``a2e_explain``: perturbations that explain the standard and a second classifier."""

    section: ClassVar[str | None] = "a2e_explain"

    targets: ClassList = Field(
        ClassDraw(draw=2),
        description="target classes: indices, names or {draw: k} (advinterp.config.classes)",
    )
    seeds_per_target: int = Field(
        2, ge=2, description="perturbations per target, one seed each (the headline spreads)"
    )
    reference_size: int | None = Field(
        224,
        ge=1,
        description="image side at which attack.eta is stated (the paper's 224 px); η is "
        "scaled by image_size / reference_size (equal rms per value); null = η as is",
    )
    num_samples: int = Field(32, ge=1, description="|D̄|: distribution samples [256]")
    eval_images: int = Field(
        200, ge=1, description="held-out non-target test images for the cross-model table"
    )
    attack: A2EAttackParams = A2EAttackParams(eta=10.0)
    region: A2ERegionConfig = A2ERegionConfig()
    figure: FigureParams = FigureParams(dpi=100)
