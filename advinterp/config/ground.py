"""The ``ground`` section of params.yaml: Eqs. 16-17 selection, matching with detections,
Figures 6-7.
"""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from advinterp.config.core import FigureParams, Section


class GroundConfig(Section):
    """``ground``: Eqs. 16-17 selection, matching with detections, Figures 6-7."""

    section: ClassVar[str | None] = "ground"

    classifier: Literal["sje", "softmax"] = Field(
        "sje", description="whose predictions decide correct/misclassified and the wrong class"
    )
    top_k: int = Field(10, ge=1, description="attributes selected per image (paper: 50/50/100)")
    normalize: Literal["none", "l2"] = Field(
        "l2",
        description="l2: predicted attributes to unit norm like φ before the Eq. 16/17 margins "
        "(as distances.normalize); none: raw θ(x)W, whose norm swamps φ",
    )
    attribute_thresh: float = Field(0.3, gt=0.0, lt=1.0, description="box carries attribute")
    box_thresh: float = Field(0.3, ge=0.0, lt=1.0, description="detections considered")
    iou_thresh: float = Field(0.5, gt=0.0, le=1.0, description="grounding vs part boxes")
    examples: int = Field(3, ge=1, description="examples per figure")
    max_listed: int = Field(8, ge=1, description="attributes listed under each image")
    figure: FigureParams = FigureParams(dpi=110)
