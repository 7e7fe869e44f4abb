"""The ``pooling_study`` section of params.yaml: max vs average pooling, adversarially trained
alike (Tables 2-3).
"""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field, model_validator

from advinterp.config.core import Section


class PoolingStudyConfig(Section):
    """``pooling_study``: max vs average pooling, adversarially trained alike (Tables 2-3)."""

    section: ClassVar[str | None] = "pooling_study"

    eps: float = Field(0.03, gt=0.0, le=1.0, description="L-inf budget of every attack")
    pgd_steps: tuple[int, int] = Field((10, 40), description="the two PGD step counts")
    mpgd_steps: int = Field(10, ge=1, description="momentum PGD (M-PGD) steps")
    mpgd_decay: float = Field(1.0, ge=0.0, description="momentum μ")
    max_images: int | None = Field(
        240, ge=1, description="class-stratified test subset; null = whole test split"
    )
    batch_size: int = Field(128, ge=1)

    @model_validator(mode="after")
    def _check(self) -> PoolingStudyConfig:
        if min(self.pgd_steps) < 1:
            raise ValueError("pgd_steps must be >= 1")
        return self
