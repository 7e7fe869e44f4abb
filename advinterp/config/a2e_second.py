"""The ``a2e_second`` section of params.yaml: the second architecture of the cross-model check
(Sec. 5.1, Fig. 5),
"""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from advinterp.config.core import ClassifierArch, OptimizerParams, Section


class A2ESecondConfig(Section):
    """``a2e_second``: the second architecture of the cross-model check (Sec. 5.1, Fig. 5),
    trained on the train split with the standard model's normalisation."""

    section: ClassVar[str | None] = "a2e_second"

    arch: ClassifierArch = Field(
        "tiny_vgg", description="'tiny_vgg' or any name train.arch accepts"
    )
    epochs: int = Field(8, ge=1)
    batch_size: int = Field(64, ge=1)
    optimizer: OptimizerParams = OptimizerParams(
        name="sgd", lr=0.05, momentum=0.9, weight_decay=5e-4
    )
    augment: bool = True
