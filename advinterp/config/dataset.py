"""Datasets: the embedded synthetic attribute dataset and the real sources."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar, Literal

from pydantic import Field, model_validator

from advinterp.config.core import Section


class SyntheticConfig(Section):
    """``dataset.synthetic``: the embedded procedurally generated attribute dataset."""

    mode: Literal["fine", "coarse"] = "fine"
    num_classes: int = Field(20, ge=2)
    images_per_class: int = Field(80, ge=3)
    families: int = Field(
        5, ge=1, description="fine mode: classes derive from this many prototypes"
    )
    fine_differences: int = Field(
        3,
        ge=1,
        description="fine mode: attribute groups in which a class departs from its prototype",
    )
    dominance: tuple[float, float] = Field(
        (0.75, 0.95), description="range of a class's probability for its main value of a group"
    )
    dropout: float = Field(0.05, ge=0.0, lt=1.0, description="probability a part is not drawn")
    clutter: int = Field(6, ge=0, description="background clutter shapes per image")
    noise: float = Field(0.03, ge=0.0, le=0.5, description="std of Gaussian pixel noise")

    @model_validator(mode="after")
    def _check(self) -> SyntheticConfig:
        lo, hi = self.dominance
        if not 0.0 < lo <= hi <= 1.0:
            raise ValueError("dominance must satisfy 0 < low <= high <= 1")
        if self.families > self.num_classes:
            raise ValueError("families must not exceed num_classes")
        return self


class DatasetConfig(Section):
    """``dataset``: which source to read and how to shape its images."""

    section: ClassVar[str | None] = "dataset"

    source: Literal["synthetic", "cub", "awa2", "lad"] = "synthetic"
    root: Path | None = Field(None, description="dataset directory, for the real sources")
    image_size: int = Field(64, ge=8, le=1024)
    val_fraction: float = Field(0.1, ge=0.0, lt=1.0)
    test_fraction: float = Field(0.3, gt=0.0, lt=1.0)
    max_images: int | None = Field(
        None, ge=1, description="keep a class-stratified subset of this many images (quick runs)"
    )
    synthetic: SyntheticConfig = SyntheticConfig()

    @model_validator(mode="after")
    def _check(self) -> DatasetConfig:
        if self.source != "synthetic" and self.root is None:
            raise ValueError(f"source '{self.source}' needs dataset.root")
        if self.val_fraction + self.test_fraction >= 1.0:
            raise ValueError("val_fraction + test_fraction must leave images for training")
        return self
