"""Localized attacks as ground truth for explainers (Göpfert et al.): the method and
the Felzenszwalb segmentation its stages share. Each stage's section model is in
``advinterp/config/<section>.py``.
"""

from __future__ import annotations

from pydantic import Field

from advinterp.config.core import Method, Section

LOCALIZED = Method(
    "localized",
    "Localized attacks as ground truth for explainers",
    "Göpfert et al., Recovering localized adversarial attacks",
    2,
)


class FelzenszwalbParams(Section):
    """Felzenszwalb-Huttenlocher segmentation (scikit-image ``felzenszwalb``)."""

    scale: float = Field(100.0, gt=0.0, description="higher = larger segments")
    sigma: float = Field(1.0, ge=0.0, description="Gaussian pre-smoothing")
    min_size: int = Field(30, ge=1, description="minimum segment size in pixels")
