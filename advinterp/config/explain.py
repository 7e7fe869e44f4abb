"""The ``explain`` section of params.yaml: saliency, guided backprop, LIME and a random
baseline (Göpfert et al.).
"""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from advinterp.config.core import Section
from advinterp.config.localized import FelzenszwalbParams


class QuickshiftParams(Section):
    """Quickshift segmentation as lime's image explainer calls it.

    lime's own defaults (kernel_size 4, max_dist 200, ratio 0.2) are tuned for ~224 px
    images and give 4-5 superpixels at 64 px; these defaults give ~45 at 64 px.
    """

    kernel_size: float = Field(2.0, gt=0.0)
    max_dist: float = Field(6.0, gt=0.0)
    ratio: float = Field(0.5, ge=0.0, le=1.0)


class ExplainConfig(Section):
    """``explain``: saliency, guided backprop, LIME and a random baseline (Göpfert et al.)."""

    section: ClassVar[str | None] = "explain"

    batch_size: int = Field(64, ge=1, description="images per gradient-explainer call")
    # advinterp.explainers.saliency.SaliencyForm (not imported: configs import no torch)
    saliency: Literal["log_prob", "loss", "logit"] = Field(
        "log_prob",
        description="J of classic saliency relu(dJ/dx): log_prob (the paper's sign), loss "
        "(cross-entropy literally) or logit (Grad-CAM's class score)",
    )
    lime_segmentation: Literal["quickshift", "felzenszwalb"] = "felzenszwalb"
    quickshift: QuickshiftParams = QuickshiftParams()
    felzenszwalb: FelzenszwalbParams = FelzenszwalbParams(scale=50.0, sigma=0.5, min_size=10)
    lime_num_samples: int = Field(1000, ge=2, description="perturbed samples per explanation")
    lime_batch_size: int = Field(256, ge=1, description="perturbed images per forward pass")
    lime_top: int = Field(20, ge=1, description="best positive superpixels kept")
    ifgsm_images: int = Field(
        12, ge=0, description="full-image IFGSM examples of the attack stage to explain"
    )
    ifgsm_mode: Literal["untargeted", "targeted"] = "untargeted"
    ifgsm_eps: float = Field(0.02, gt=0.0, le=1.0, description="an eps of attack.eps")
