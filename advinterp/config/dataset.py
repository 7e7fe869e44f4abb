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


DIGIT_FONTS: tuple[str, ...] = (
    "DejaVuSans",
    "DejaVuSans-Bold",
    "DejaVuSans-Oblique",
    "DejaVuSans-BoldOblique",
    "DejaVuSansMono",
    "DejaVuSansMono-Bold",
    "DejaVuSansMono-Oblique",
    "DejaVuSansMono-BoldOblique",
    "DejaVuSerif",
    "DejaVuSerif-Bold",
    "DejaVuSerif-Italic",
    "DejaVuSerif-BoldItalic",
    "STIXGeneral",
    "STIXGeneralBol",
    "STIXGeneralItalic",
    "STIXGeneralBolIta",
    "cmr10",
    "cmss10",
    "cmtt10",
    "cmb10",
    "cmti10",
)
"""Every font shipped with matplotlib that draws the ten digits (the Display and symbol
faces do not)."""


class DigitsConfig(Section):
    """``dataset.digits``: the embedded MNIST-like digits (fonts, distorted like handwriting)."""

    images_per_class: int = Field(300, ge=3)
    fonts: tuple[str, ...] = Field(
        DIGIT_FONTS,
        min_length=1,
        description="file stems of the .ttf fonts in matplotlib's data directory",
    )
    height: tuple[float, float] = Field(
        (0.6, 0.8), description="range of the glyph's height as a fraction of the image side"
    )
    stroke: tuple[int, int] = Field(
        (0, 2),
        description="range of the stroke change in canvas pixels (2x the image side): "
        "< 0 erodes, > 0 dilates",
    )
    rotation: float = Field(15.0, ge=0.0, le=90.0, description="max |rotation|, degrees")
    shear: float = Field(0.3, ge=0.0, le=1.0, description="max |horizontal shear|")
    scale: tuple[float, float] = Field((0.85, 1.1), description="range of the anisotropic scale")
    translate: float = Field(
        0.08, ge=0.0, le=0.3, description="max |shift| as a fraction of the image side"
    )
    elastic_alpha: float = Field(
        0.12, ge=0.0, description="elastic displacement scale, fraction of the image side"
    )
    elastic_sigma: float = Field(
        0.15, gt=0.0, description="smoothing of the displacement field, fraction of the side"
    )
    intensity: tuple[float, float] = Field(
        (0.75, 1.0), description="range of the stroke's brightness on a black background"
    )
    noise: float = Field(0.05, ge=0.0, le=0.5, description="std of Gaussian pixel noise")

    @model_validator(mode="after")
    def _check(self) -> DigitsConfig:
        for name in ("height", "scale", "intensity"):
            lo, hi = getattr(self, name)
            if not 0.0 < lo <= hi:
                raise ValueError(f"{name} must satisfy 0 < low <= high")
        if not 0.0 < self.height[1] <= 1.0 or not self.intensity[1] <= 1.0:
            raise ValueError("height and intensity must not exceed 1")
        if self.stroke[0] > self.stroke[1]:
            raise ValueError("stroke must satisfy low <= high")
        if len(set(self.fonts)) != len(self.fonts):
            raise ValueError("fonts must be distinct")
        return self


class DatasetConfig(Section):
    """``dataset``: which source to read and how to shape its images."""

    section: ClassVar[str | None] = "dataset"

    source: Literal["synthetic", "digits", "cub", "awa2", "lad"] = "synthetic"
    root: Path | None = Field(None, description="dataset directory, for the real sources")
    image_size: int = Field(64, ge=8, le=1024)
    val_fraction: float = Field(0.1, ge=0.0, lt=1.0)
    test_fraction: float = Field(0.3, gt=0.0, lt=1.0)
    max_images: int | None = Field(
        None, ge=1, description="keep a class-stratified subset of this many images (quick runs)"
    )
    synthetic: SyntheticConfig = SyntheticConfig()
    digits: DigitsConfig | None = Field(
        None, description="source 'digits': the generator's parameters (required there)"
    )

    @model_validator(mode="after")
    def _check(self) -> DatasetConfig:
        if self.source == "digits" and self.digits is None:
            raise ValueError("source 'digits' needs a dataset.digits section")
        if self.source not in ("synthetic", "digits") and self.root is None:
            raise ValueError(f"source '{self.source}' needs dataset.root")
        if self.val_fraction + self.test_fraction >= 1.0:
            raise ValueError("val_fraction + test_fraction must leave images for training")
        return self
