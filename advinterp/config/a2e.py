"""Attack to explain (Jalwana et al.): class perturbations, generation and inpainting."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field, model_validator

from advinterp.config.classes import ClassDraw, ClassList, ClassRef
from advinterp.config.core import ClassifierArch, FigureParams, Method, OptimizerParams, Section

A2E = Method("a2e", "Attack to explain", "Jalwana et al., Attack to explain deep representation", 4)


class A2EAttackParams(Section):
    """Algorithms 1-2 of Jalwana et al. (attack to explain); paper values in brackets."""

    eta: float = Field(
        gt=0.0,
        description="l2 radius η in [0, 1] pixel units, stated at the section's reference_size "
        "(scaled to the image size at equal rms per value) [10 at 224 px]",
    )
    batch_size: int = Field(8, ge=2, description="mini-batch b: seed + b-1 samples [32]")
    gamma: float = Field(0.8, ge=0.0, le=1.0, description="stop when ℘ >= γ [0.8]")
    max_iterations: int = Field(80, ge=1, description="cap on the first Algorithm 1 run")
    refine_every: int = Field(
        50, ge=0, description="Algorithm 1 iterations between refinements [50]; 0 = none"
    )
    refine_until: int = Field(300, ge=0, description="total iterations of the alternation [300]")
    lam: float = Field(5.0, gt=0.0, description="λ of Algorithm 2 [5]")
    alpha: float = Field(0.9, ge=0.0, lt=1.0)
    beta: float = Field(0.999, ge=0.0, lt=1.0)
    step_size: float = Field(
        1.0 / 255.0,
        gt=0.0,
        description="scale of ρ on lines 11-18: one intensity level of a [0, 255] image",
    )
    accumulate_seed: bool = Field(True, description="line 4 as written: d <- Clip(d + p_t)")
    eval_batch_size: int = Field(256, ge=1)


class A2ESecondConfig(Section):
    """``a2e_second``: the second architecture of the cross-model check (Sec. 5.1, Fig. 5),
    trained on the train split with the standard model's normalisation."""

    section: ClassVar[str | None] = "a2e_second"

    arch: ClassifierArch = Field(
        "tiny_vgg", description="'tiny_vgg' or any name train.arch accepts"
    )
    epochs: int = Field(8, ge=1)
    batch_size: int = Field(64, ge=1)
    optimizer: OptimizerParams = OptimizerParams(
        name="sgd", lr=0.05, momentum=0.9, weight_decay=5e-4
    )
    augment: bool = True


class A2ERegionConfig(Section):
    """``a2e_explain.region``: region-specific semantics (Fig. 4)."""

    target: ClassRef | None = Field(
        None, description="class index or name (advinterp.config.classes); null = the first target"
    )
    size: float = Field(0.29, gt=0.0, le=1.0, description="patch side / image side [64 px of 224]")
    positions: list[tuple[float, float]] = Field(
        [(0.1, 0.1), (0.35, 0.6), (0.6, 0.2)],
        description="(top, left) of each patch as fractions of the image side",
    )

    @model_validator(mode="after")
    def _check(self) -> A2ERegionConfig:
        for top, left in self.positions:
            if not (0.0 <= top <= 1.0 - self.size and 0.0 <= left <= 1.0 - self.size):
                raise ValueError("every patch must lie inside the image: 0 <= pos <= 1 - size")
        return self


class A2EExplainConfig(Section):
    """``a2e_explain``: perturbations that explain the standard and a second classifier."""

    section: ClassVar[str | None] = "a2e_explain"

    targets: ClassList = Field(
        ClassDraw(draw=2),
        description="target classes: indices, names or {draw: k} (advinterp.config.classes)",
    )
    seeds_per_target: int = Field(
        2, ge=2, description="perturbations per target, one seed each (the headline spreads)"
    )
    reference_size: int | None = Field(
        224,
        ge=1,
        description="image side at which attack.eta is stated (the paper's 224 px); η is "
        "scaled by image_size / reference_size (equal rms per value); null = η as is",
    )
    num_samples: int = Field(32, ge=1, description="|D̄|: distribution samples [256]")
    eval_images: int = Field(
        200, ge=1, description="held-out non-target test images for the cross-model table"
    )
    attack: A2EAttackParams = A2EAttackParams(eta=10.0)
    region: A2ERegionConfig = A2ERegionConfig()
    figure: FigureParams = FigureParams(dpi=100)


class A2EInpaintConfig(Section):
    """``a2e_robust.inpainting``: Eq. 4 with a square corrupt region."""

    images: int = Field(4, ge=1, description="test images restored (class-stratified)")
    mask_size: float = Field(0.25, gt=0.0, lt=1.0, description="side of F / image side")
    fill: float = Field(0.5, ge=0.0, le=1.0, description="value of the corrupted pixels")
    beta: float = Field(10.0, ge=0.0, description="β of Eq. 4 [10]")
    attack: A2EAttackParams = A2EAttackParams(eta=21.0, gamma=0.99, refine_every=0)


class A2ESketchConfig(Section):
    """``a2e_robust.sketch``: crude sketch -> target class image (Fig. 8)."""

    n_segments: int = Field(24, ge=2, description="SLIC blobs of the crude sketch")
    compactness: float = Field(10.0, gt=0.0)
    attack: A2EAttackParams = A2EAttackParams(eta=60.0, gamma=0.99)


class A2ERobustConfig(Section):
    """``a2e_robust``: generation, inpainting and manipulation with a robust classifier."""

    section: ClassVar[str | None] = "a2e_robust"

    robust_model: str | None = Field(
        None, description="checkpoint stem in adv_train's models dir; null = largest train eps"
    )
    targets: ClassList = Field(
        ClassDraw(draw=2),
        description="generation/sketch classes: indices, names or {draw: k} (as a2e_explain)",
    )
    seeds_per_target: int = Field(2, ge=1, description="generated images per target")
    reference_size: int | None = Field(
        224,
        ge=1,
        description="image side at which every task's eta is stated (the paper's 224 px); "
        "scaled by image_size / reference_size (equal rms per value); null = η as is",
    )
    num_samples: int = Field(32, ge=1, description="Gaussian draws forming D̄ [256]")
    downsample: int = Field(4, ge=1, description="Gaussian fitted at 1/downsample size [4]")
    ridge: float = Field(1e-4, ge=0.0, description="variance added to Σ's diagonal")
    generation: A2EAttackParams = A2EAttackParams(eta=40.0, gamma=0.99, refine_every=0)
    inpainting: A2EInpaintConfig = A2EInpaintConfig()
    sketch: A2ESketchConfig = A2ESketchConfig()
    pgd_step_size: float | None = Field(
        None, gt=0.0, description="baseline l2 PGD step; null = 2.5 η / steps"
    )
    figure: FigureParams = FigureParams(dpi=100)
