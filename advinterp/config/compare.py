"""The ``compare`` section of params.yaml: the shared examples, the references the maps are
scored against.
"""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field, field_validator

from advinterp.config.core import FigureParams, Section


class CompareConfig(Section):
    """``compare``: the shared examples, the references the maps are scored against."""

    section: ClassVar[str | None] = "compare"

    eps: float = Field(0.02, gt=0.0, le=1.0, description="IFGSM eps of the shared examples")
    examples_per_mode: int = Field(
        8, ge=1, description="fooled IFGSM examples per mode (untargeted, targeted), by class"
    )
    localized_examples: int = Field(
        8, ge=0, description="localized attacks (the attacked region is known) explained too"
    )
    top_fraction: float = Field(
        0.1, gt=0.0, lt=1.0, description="share of pixels in the top-k sets (|δ| and agreement)"
    )
    igan_layer: str = Field(
        "auto", description="InterpretGAN layer; auto = the natural model's largest Vul_i"
    )
    batch_size: int = Field(32, ge=1)
    figure_examples: int = Field(2, ge=1, description="rows of the maps figure per group")
    figure: FigureParams = FigureParams(dpi=72)

    @field_validator("igan_layer")
    @classmethod
    def _layer_named(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("name a layer (conv1, fc1, ...) or auto")
        return v
