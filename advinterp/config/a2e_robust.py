"""The ``a2e_robust`` section of params.yaml: generation, inpainting and manipulation with a
robust classifier.
"""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from advinterp.config.a2e import A2EAttackParams
from advinterp.config.classes import ClassDraw, ClassList
from advinterp.config.core import FigureParams, Section


class A2EInpaintConfig(Section):
    """``a2e_robust.inpainting``: Eq. 4 with a square corrupt region."""

    images: int = Field(4, ge=1, description="test images restored (class-stratified)")
    mask_size: float = Field(0.25, gt=0.0, lt=1.0, description="side of F / image side")
    fill: float = Field(0.5, ge=0.0, le=1.0, description="value of the corrupted pixels")
    beta: float = Field(10.0, ge=0.0, description="β of Eq. 4 [10]")
    attack: A2EAttackParams = A2EAttackParams(eta=21.0, gamma=0.99, refine_every=0)


class A2ESketchConfig(Section):
    """``a2e_robust.sketch``: crude sketch -> target class image (Fig. 8)."""

    n_segments: int = Field(24, ge=2, description="SLIC blobs of the crude sketch")
    compactness: float = Field(10.0, gt=0.0)
    attack: A2EAttackParams = A2EAttackParams(eta=60.0, gamma=0.99)


class A2ERobustConfig(Section):
    """``a2e_robust``: generation, inpainting and manipulation with a robust classifier."""

    section: ClassVar[str | None] = "a2e_robust"

    robust_model: str | None = Field(
        None, description="checkpoint stem in adv_train's models dir; null = largest train eps"
    )
    targets: ClassList = Field(
        ClassDraw(draw=2),
        description="generation/sketch classes: indices, names or {draw: k} (as a2e_explain)",
    )
    seeds_per_target: int = Field(2, ge=1, description="generated images per target")
    reference_size: int | None = Field(
        224,
        ge=1,
        description="image side at which every task's eta is stated (the paper's 224 px); "
        "scaled by image_size / reference_size (equal rms per value); null = η as is",
    )
    num_samples: int = Field(32, ge=1, description="Gaussian draws forming D̄ [256]")
    downsample: int = Field(4, ge=1, description="Gaussian fitted at 1/downsample size [4]")
    ridge: float = Field(1e-4, ge=0.0, description="variance added to Σ's diagonal")
    generation: A2EAttackParams = A2EAttackParams(eta=40.0, gamma=0.99, refine_every=0)
    inpainting: A2EInpaintConfig = A2EInpaintConfig()
    sketch: A2ESketchConfig = A2ESketchConfig()
    pgd_step_size: float | None = Field(
        None, gt=0.0, description="baseline l2 PGD step; null = 2.5 η / steps"
    )
    figure: FigureParams = FigureParams(dpi=100)
