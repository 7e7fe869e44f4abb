"""The ``attack`` section of params.yaml: IFGSM (Gulshad et al. Eq. 1), untargeted and
targeted, L-inf.
"""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from advinterp.config.core import EpsList, Section


class AttackConfig(Section):
    """``attack``: IFGSM (Gulshad et al. Eq. 1), untargeted and targeted, L-inf."""

    section: ClassVar[str | None] = "attack"

    eps: EpsList = Field(
        (0.0025, 0.005, 0.01, 0.02, 0.04, 0.06, 0.12), description="L-inf budgets, pixel units"
    )
    steps: int = Field(10, ge=1)
    step_size: float | None = Field(
        None, gt=0.0, description="IFGSM step α in pixel units; null = 2.5 eps / steps"
    )
    max_images: int | None = Field(
        200, ge=1, description="class-stratified test subset to attack; null = whole test split"
    )
    batch_size: int = Field(64, ge=1)
