"""The ``lan_detect`` section of params.yaml: Nguyen et al. Tables 1-4, ROC/AUC, Figure 3
analogue.
"""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from advinterp.config.core import FigureParams, Section


class LanDetectConfig(Section):
    """``lan_detect``: Nguyen et al. Tables 1-4, ROC/AUC, Figure 3 analogue."""

    section: ClassVar[str | None] = "lan_detect"

    batch_size: int = Field(128, ge=1)
    figure_examples: int = Field(2, ge=1, description="benign images in the Figure 3 analogue")
    figure: FigureParams = FigureParams(dpi=100)
