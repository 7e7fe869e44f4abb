"""The ``train`` section of params.yaml: the classifier f (Gulshad et al.'s fine-tuned ResNet)."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from pydantic import Field, model_validator

from advinterp.config.core import ClassifierArch, OptimizerParams, Section


class TrainConfig(Section):
    """``train``: the classifier f (Gulshad et al.'s fine-tuned ResNet)."""

    section: ClassVar[str | None] = "train"

    arch: ClassifierArch = Field(
        "tiny_resnet", description="torchvision model name, 'tiny_resnet' or 'small_cnn'"
    )
    weights: Path | None = Field(None, description="local state_dict to start from (never fetched)")
    epochs: int = Field(15, ge=1)
    batch_size: int = Field(64, ge=1)
    optimizer: OptimizerParams = OptimizerParams(
        name="sgd", lr=0.05, momentum=0.9, weight_decay=5e-4
    )
    label_smoothing: float = Field(0.0, ge=0.0, lt=1.0)
    augment: bool = True
    mean: tuple[float, ...] = Field(
        (0.485, 0.456, 0.406), min_length=1, description="one per image channel"
    )
    std: tuple[float, ...] = Field(
        (0.229, 0.224, 0.225), min_length=1, description="one per image channel"
    )

    @model_validator(mode="after")
    def _check(self) -> TrainConfig:
        if min(self.std) <= 0:
            raise ValueError("std must be positive")
        if len(self.mean) != len(self.std):
            raise ValueError("mean and std need the same length (one value per image channel)")
        return self
