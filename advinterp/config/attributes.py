"""Attributes (Gulshad et al.): attacks, adversarial training, SJE, detector, grounding, distances."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar, Literal

from pydantic import Field, model_validator

from advinterp.config.core import EpsList, FigureParams, Method, OptimizerParams, Section

ATTRIBUTES = Method(
    "attributes",
    "Attributes",
    "Gulshad et al., Interpreting adversarial examples with attributes",
    1,
)


class AttackConfig(Section):
    """``attack``: IFGSM (Gulshad et al. Eq. 1), untargeted and targeted, L-inf."""

    section: ClassVar[str | None] = "attack"

    eps: EpsList = Field(
        (0.0025, 0.005, 0.01, 0.02, 0.04, 0.06, 0.12), description="L-inf budgets, pixel units"
    )
    steps: int = Field(10, ge=1)
    step_size: float | None = Field(
        None, gt=0.0, description="IFGSM step α in pixel units; null = 2.5 eps / steps"
    )
    max_images: int | None = Field(
        200, ge=1, description="class-stratified test subset to attack; null = whole test split"
    )
    batch_size: int = Field(64, ge=1)


class AdvTrainConfig(Section):
    """``adv_train``: fine-tune the classifier with Eq. 2 and PGD, one model per eps."""

    section: ClassVar[str | None] = "adv_train"

    eps: EpsList = Field((0.02,), description="one robust model per training eps")
    alpha: float = Field(0.5, ge=0.0, le=1.0, description="weight of the clean loss in Eq. 2")
    steps: int = Field(3, ge=1, description="PGD steps per training batch")
    step_size: float | None = Field(None, gt=0.0, description="null = 2.5 eps / steps")
    epochs: int = Field(4, ge=1)
    batch_size: int = Field(64, ge=1)
    optimizer: OptimizerParams = OptimizerParams(
        name="sgd", lr=0.01, momentum=0.9, weight_decay=5e-4
    )
    augment: bool = True
    eval_steps: int = Field(10, ge=1, description="PGD steps of the robustness evaluation")
    eval_images: int | None = Field(200, ge=1, description="test images for the evaluation")


class SjeConfig(Section):
    """``sje``: structured joint embedding (Eqs. 3-6) on θ(x) of each model."""

    section: ClassVar[str | None] = "sje"

    center: bool = Field(True, description="mean-centre class attributes before l2")
    feature_norm: Literal["none", "l2"] = "l2"
    margin: float = Field(1.0, gt=0.0, description="Δ(y_n, y) for a wrong class")
    lr: float = Field(
        10.0, gt=0.0, description="Eq. 6 step η; from W = 0 only the ratio lr / margin matters"
    )
    epochs: int = Field(100, ge=1)
    batch_size: int = Field(64, ge=1)
    patience: int = Field(15, ge=1, description="epochs without val improvement before stopping")


class AccuracyConfig(Section):
    """``accuracy``: Figure 4, softmax vs SJE accuracy against eps."""

    section: ClassVar[str | None] = "accuracy"

    figure: FigureParams = FigureParams(dpi=120)


class DetectorModelConfig(Section):
    """``train_detector.model``: the Faster R-CNN with attribute head (architecture knobs)."""

    backbone: Literal["tiny", "resnet18", "resnet34", "resnet50"] = Field(
        "tiny", description="tiny conv net, or a torchvision ResNet+FPN (random init)"
    )
    channels: tuple[int, ...] = Field((16, 32, 48), description="tiny: channels per stage")
    strides: tuple[int, ...] = Field((2, 2, 1), description="tiny: stride of each stage")
    image_size: int | None = Field(
        None, ge=16, description="side the detector resizes to; null = the dataset's size"
    )
    anchor_sizes: tuple[int, ...] = Field(
        (4, 8, 16, 32), description="anchor sides in pixels; 5 (one per level) for FPN"
    )
    aspect_ratios: tuple[float, ...] = (0.5, 1.0, 2.0)
    roi_output_size: int = Field(5, ge=1)
    representation_size: int = Field(128, ge=8)
    rpn_pre_nms_top_n_train: int = Field(200, ge=1)
    rpn_post_nms_top_n_train: int = Field(64, ge=1)
    rpn_pre_nms_top_n_test: int = Field(150, ge=1)
    rpn_post_nms_top_n_test: int = Field(50, ge=1)
    rpn_batch_size_per_image: int = Field(64, ge=1)
    box_batch_size_per_image: int = Field(32, ge=1)
    box_score_thresh: float = Field(0.05, ge=0.0, lt=1.0)
    box_nms_thresh: float = Field(0.5, gt=0.0, le=1.0)
    detections_per_img: int = Field(20, ge=1)
    attribute_loss_weight: float = Field(10.0, ge=0.0)
    mean: tuple[float, float, float] = (0.485, 0.456, 0.406)
    std: tuple[float, float, float] = (0.229, 0.224, 0.225)

    @model_validator(mode="after")
    def _check(self) -> DetectorModelConfig:
        if self.backbone == "tiny" and len(self.channels) != len(self.strides):
            raise ValueError("channels and strides need the same length")
        if self.backbone != "tiny" and len(self.anchor_sizes) != 5:
            raise ValueError("FPN backbones need 5 anchor_sizes, one per pyramid level")
        return self


class TrainDetectorConfig(Section):
    """``train_detector``: train (or load) the attribute detector of Gulshad et al. Eq. 7."""

    section: ClassVar[str | None] = "train_detector"

    weights: Path | None = Field(
        None, description="local detector checkpoint to start from (never downloaded)"
    )
    model: DetectorModelConfig = DetectorModelConfig()
    epochs: int = Field(5, ge=0, description="0 with weights = use the checkpoint as is")
    batch_size: int = Field(16, ge=1)
    lr: float = Field(0.02, gt=0.0)
    attribute_lr_scale: float = Field(
        10.0, gt=0.0, description="learning-rate multiplier of the attribute head"
    )
    momentum: float = Field(0.9, ge=0.0, lt=1.0)
    weight_decay: float = Field(1e-4, ge=0.0)
    flip: bool = True
    max_train_images: int | None = Field(None, ge=1, description="train-split subset size")
    eval_images: int | None = Field(200, ge=1, description="test images scored for AP/recall")
    iou_thresh: float = Field(0.5, gt=0.0, le=1.0)
    attribute_thresh: float = Field(0.5, gt=0.0, lt=1.0)

    @model_validator(mode="after")
    def _check(self) -> TrainDetectorConfig:
        if self.epochs == 0 and self.weights is None:
            raise ValueError("epochs 0 needs weights (a checkpoint to use as is)")
        return self


class DetectConfig(Section):
    """``detect``: detector boxes/classes/attributes on clean and adversarial test images."""

    section: ClassVar[str | None] = "detect"

    eps: float = Field(0.02, gt=0.0, le=1.0, description="attack budget analysed (in attack.eps)")
    at_model: str = Field("auto", description="AT model key, or auto = nearest training eps")
    batch_size: int = Field(50, ge=1)


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


class DistancesConfig(Section):
    """``distances``: Eqs. 8-15 / Figure 5 on the most-changed attributes."""

    section: ClassVar[str | None] = "distances"

    eps: float = Field(0.02, gt=0.0, le=1.0, description="budget of the Figure 5 histograms")
    classifier: Literal["sje", "softmax"] = "sje"
    at_model: str = Field("auto", description="AT model key, or auto = nearest training eps")
    fraction: float = Field(0.2, gt=0.0, le=1.0, description="most-changed attributes kept")
    scope: Literal["per_image", "global"] = "per_image"
    normalize: Literal["none", "l2"] = Field(
        "l2", description="l2: predicted attributes to unit norm like φ (SJE leaves scale free)"
    )
    bins: int = Field(20, ge=2)
    figure: FigureParams = FigureParams(dpi=110)
