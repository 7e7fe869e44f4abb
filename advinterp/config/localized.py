"""Localized attacks as ground truth for explainers (Göpfert et al.)."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field, field_validator

from advinterp.config.classes import ClassRef
from advinterp.config.core import FigureParams, Method, Section

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


class QuickshiftParams(Section):
    """Quickshift segmentation as lime's image explainer calls it.

    lime's own defaults (kernel_size 4, max_dist 200, ratio 0.2) are tuned for ~224 px
    images and give 4-5 superpixels at 64 px; these defaults give ~45 at 64 px.
    """

    kernel_size: float = Field(2.0, gt=0.0)
    max_dist: float = Field(6.0, gt=0.0)
    ratio: float = Field(0.5, ge=0.0, le=1.0)


class LocalizedAttackConfig(Section):
    """``localized_attack``: targeted BIM confined to Felzenszwalb regions (Göpfert et al.)."""

    section: ClassVar[str | None] = "localized_attack"

    num_images: int = Field(20, ge=1, description="correctly classified test images to attack")
    target: ClassRef = Field(
        0, description="the one target class of every attack: an index or a class name"
    )
    max_regions: int = Field(10, ge=1, description="largest regions attacked per image")
    max_region_fraction: float = Field(
        0.5, gt=0.0, le=1.0, description="skip regions larger than this share (background)"
    )
    segmentation: FelzenszwalbParams = FelzenszwalbParams(scale=200.0, sigma=1.0, min_size=40)
    eps: float = Field(0.5, gt=0.0, le=1.0, description="L-inf budget inside the region")
    step_size: float = Field(0.03, gt=0.0, description="BIM step α, pixel units")
    max_steps: int = Field(100, ge=1, description="step budget; not at target by then = failed")
    patience: int = Field(20, ge=1, description="steps without progress before giving up")
    min_improvement: float = Field(1e-3, ge=0.0, description="target CE drop that counts")
    confidence: float = Field(0.0, ge=0.0, description="logit margin required for success")
    batch_size: int = Field(64, ge=1)


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


class ExplainEvalConfig(Section):
    """``explain_eval``: Eqs. 2-3 curves, Table 1 mean ranks, Figures 3-4."""

    section: ClassVar[str | None] = "explain_eval"

    max_superpixels: int = Field(20, ge=1, description="n = 1..this (<= explain.lime_top)")
    figure_examples: int = Field(4, ge=1, description="examples in the Figure 3-style plot")
    overlap_fraction: float = Field(
        0.1, gt=0.0, le=1.0, description="top-pixel share compared between clean and adversarial"
    )
    figure: FigureParams = FigureParams(dpi=72)


class LimeStudyConfig(Section):
    """``lime_study``: Table 1 under several LIME segmentations and saliency forms.

    Segmentations: ``quickshift`` and ``felzenszwalb`` with the ``explain`` params,
    ``quickshift_lime`` with lime's own defaults (4 / 200 / 0.2),
    ``felzenszwalb_attack`` with the attack's params (``localized_attack.segmentation``,
    as recorded in its store), ``attack_segments`` the attack's own segments of the clean
    image (an oracle: it hands LIME the ground truth's outline).
    """

    section: ClassVar[str | None] = "lime_study"

    num_images: int = Field(
        12, ge=1, description="localized examples, evenly spaced over the set (explain: all)"
    )
    lime_num_samples: int = Field(
        200, ge=2, description="perturbed samples per explanation (explain: lime_num_samples)"
    )
    segmentations: list[
        Literal[
            "quickshift",
            "quickshift_lime",
            "felzenszwalb",
            "felzenszwalb_attack",
            "attack_segments",
        ]
    ] = Field(
        ["quickshift", "quickshift_lime", "felzenszwalb", "felzenszwalb_attack", "attack_segments"],
        min_length=1,
    )
    saliency: list[Literal["log_prob", "loss", "logit"]] = Field(
        ["log_prob", "loss", "logit"], min_length=1, description="saliency forms (explain.saliency)"
    )
    figure_examples: int = Field(2, ge=1, description="examples in the superpixel figure")
    figure: FigureParams = FigureParams(dpi=72)

    @field_validator("segmentations", "saliency")
    @classmethod
    def _unique(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError(f"listed twice: {value}")
        return value
