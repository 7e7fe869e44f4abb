"""The ``lime_study`` section of params.yaml: Table 1 under several LIME segmentations and
saliency forms.
"""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field, field_validator

from advinterp.config.core import FigureParams, Section


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
