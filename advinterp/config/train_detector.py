"""The ``train_detector`` section of params.yaml: train (or load) the attribute detector of
Gulshad et al. Eq. 7.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar, Literal

from pydantic import Field, model_validator

from advinterp.config.core import Section


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
