"""The ``detect`` section of params.yaml: detector boxes/classes/attributes on clean and
adversarial test images.
"""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from advinterp.config.core import Section


class DetectConfig(Section):
    """``detect``: detector boxes/classes/attributes on clean and adversarial test images."""

    section: ClassVar[str | None] = "detect"

    eps: float = Field(0.02, gt=0.0, le=1.0, description="attack budget analysed (in attack.eps)")
    at_model: str = Field("auto", description="AT model key, or auto = nearest training eps")
    batch_size: int = Field(50, ge=1)
