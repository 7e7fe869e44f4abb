"""The ``localized_attack`` section of params.yaml: targeted BIM confined to Felzenszwalb
regions (Göpfert et al.).
"""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from advinterp.config.classes import ClassRef
from advinterp.config.core import Section
from advinterp.config.localized import FelzenszwalbParams


class LocalizedAttackConfig(Section):
    """``localized_attack``: targeted BIM confined to Felzenszwalb regions (Göpfert et al.)."""

    section: ClassVar[str | None] = "localized_attack"

    num_images: int = Field(20, ge=1, description="correctly classified test images to attack")
    target: ClassRef = Field(
        0, description="the one target class of every attack: an index or a class name"
    )
    max_regions: int = Field(10, ge=1, description="largest regions attacked per image")
    max_region_fraction: float = Field(
        0.5, gt=0.0, le=1.0, description="skip regions larger than this share (background)"
    )
    segmentation: FelzenszwalbParams = FelzenszwalbParams(scale=200.0, sigma=1.0, min_size=40)
    eps: float = Field(0.5, gt=0.0, le=1.0, description="L-inf budget inside the region")
    step_size: float = Field(0.03, gt=0.0, description="BIM step α, pixel units")
    max_steps: int = Field(100, ge=1, description="step budget; not at target by then = failed")
    patience: int = Field(20, ge=1, description="steps without progress before giving up")
    min_improvement: float = Field(1e-3, ge=0.0, description="target CE drop that counts")
    confidence: float = Field(0.0, ge=0.0, description="logit margin required for success")
    batch_size: int = Field(64, ge=1)
