"""Faster R-CNN whose box head also predicts attributes: the grounder of Gulshad et al.

Sec. 3.2, Eq. 7: ``b^j, A^j, Y^j = F(x_n)`` -- for every detected box ``b^j`` the
detector gives an object class ``Y^j`` and attributes ``A^j``. The paper uses the
bottom-up-attention detector (Anderson et al., Visual Genome: 1600 objects, 400
attributes), a Faster R-CNN with an extra multi-label attribute classifier on the
pooled box feature. Here the same design is built on torchvision's ``FasterRCNN``:
objects are the dataset's parts (head, wing, ...), attributes its attribute
vocabulary (``wing_color::blue``), trained from part boxes with per-box labels.

Only the attribute branch is new (:class:`AttributeRoIHeads`, a ``RoIHeads``
subclass); RPN, box sampling, losses and post-processing are torchvision's. As in
bottom-up attention, the attribute classifier reads the box head's representation
(fc7) concatenated with a learned embedding of the object class -- the ground-truth
class of the matched box in training, the predicted class at inference -- through one
hidden layer. The class input matters: attributes such as ``wing_color::red`` vs
``head_color::red`` are conjunctions of part and value that a linear read-out of a
shared feature separates poorly. It is trained on the foreground proposals against the
attributes of their matched ground-truth box and at inference runs on the final boxes,
the way torchvision's mask branch does.

Weights are never downloaded: backbones start from scratch or from a local
checkpoint written by :func:`save_detector`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models.detection import FasterRCNN
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models.detection.backbone_utils import resnet_fpn_backbone
from torchvision.models.detection.faster_rcnn import FastRCNNPredictor, TwoMLPHead
from torchvision.models.detection.roi_heads import RoIHeads, fastrcnn_loss
from torchvision.ops import MultiScaleRoIAlign

from advinterp.errors import CheckpointError
from advinterp.models.checkpoint import read_weights_file
from advinterp.runtime import Precision, autocast, to_device
from advinterp.store import atomic_output

DETECTOR_FORMAT = "advinterp-attribute-rcnn/1"
Backbone = Literal["tiny", "resnet18", "resnet34", "resnet50"]


@dataclass(frozen=True)
class DetectorSpec:
    """Everything needed to rebuild a detector (stored in its checkpoint).

    Attributes:
        num_classes: object classes without background (the part names).
        num_attributes: size of the attribute vocabulary A.
        image_size: side the transform resizes images to (min and max size).
        backbone: ``tiny`` (a small conv net from ``channels``/``strides``, one
            feature map) or a torchvision ResNet with FPN, randomly initialised.
        anchor_sizes: anchor sides in pixels of the resized image; for FPN
            backbones one size per pyramid level (5).
    """

    num_classes: int
    num_attributes: int
    image_size: int
    backbone: Backbone = "tiny"
    channels: tuple[int, ...] = (16, 32, 48)
    strides: tuple[int, ...] = (2, 2, 1)
    anchor_sizes: tuple[int, ...] = (4, 8, 16, 32)
    aspect_ratios: tuple[float, ...] = (0.5, 1.0, 2.0)
    representation_size: int = 128
    roi_output_size: int = 5
    rpn_pre_nms_top_n_train: int = 200
    rpn_post_nms_top_n_train: int = 64
    rpn_pre_nms_top_n_test: int = 150
    rpn_post_nms_top_n_test: int = 50
    rpn_batch_size_per_image: int = 64
    box_batch_size_per_image: int = 32
    box_score_thresh: float = 0.05
    box_nms_thresh: float = 0.5
    detections_per_img: int = 20
    attribute_loss_weight: float = 10.0
    mean: tuple[float, float, float] = (0.485, 0.456, 0.406)
    std: tuple[float, float, float] = (0.229, 0.224, 0.225)
    class_names: tuple[str, ...] = field(default=())
    attribute_names: tuple[str, ...] = field(default=())

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DetectorSpec:
        tuples = {k: tuple(v) for k, v in data.items() if isinstance(v, list)}
        return cls(**{**data, **tuples})


class TinyBackbone(nn.Sequential):
    """Conv-BN-ReLU stages, two 3x3 convs each; the first conv of a stage has its stride.

    Shape:
        x: (N, 3, H, W) normalised -> (N, channels[-1], H / prod(strides), W / prod(strides)).
    """

    def __init__(self, channels: Sequence[int], strides: Sequence[int]):
        if len(channels) != len(strides) or not channels:
            raise ValueError("channels and strides need the same, non-zero length")
        layers: list[nn.Module] = []
        cin = 3
        for cout, stride in zip(channels, strides, strict=True):
            for k, s in ((0, stride), (1, 1)):
                layers += [
                    nn.Conv2d(cin if k == 0 else cout, cout, 3, s, 1, bias=False),
                    nn.BatchNorm2d(cout),
                    nn.ReLU(inplace=True),
                ]
            cin = cout
        super().__init__(*layers)
        self.out_channels = int(channels[-1])


class AttributePredictor(nn.Module):
    """Multi-label attribute logits from a box feature and the box's object class.

    Shape:
        features: (K, R) box-head representations; labels: (K,) int64 classes
        (0 = background) -> (K, A) logits.
    """

    def __init__(self, in_features: int, num_classes: int, num_attributes: int, embed: int = 32):
        super().__init__()
        # fc7 and pooled maps are small in scale (std ~0.05 early on): normalising them
        # lets the head learn at the detector's learning rate.
        self.norm = nn.LayerNorm(in_features)
        self.embed = nn.Embedding(num_classes, embed)
        self.hidden = nn.Linear(in_features + embed, in_features)
        self.out = nn.Linear(in_features, num_attributes)
        # Start at a small prior probability (~1/A per attribute) rather than 0.5, so
        # training is not spent pushing down the many attributes a box does not show.
        nn.init.constant_(self.out.bias, -math.log(num_attributes - 1))

    def forward(self, features: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        x = torch.cat([self.norm(features), self.embed(labels)], dim=1)
        return self.out(F.relu(self.hidden(x)))


def _attribute_input(box_features: torch.Tensor, pooled: torch.Tensor) -> torch.Tensor:
    """fc7 next to the mean-pooled RoI feature map (bottom-up attention's attribute input).

    Shape: (K, R) and (K, C, S, S) -> (K, R + C).
    """
    return torch.cat([box_features, pooled.mean(dim=(2, 3))], dim=1)


class AttributeRoIHeads(RoIHeads):
    """torchvision ``RoIHeads`` plus a multi-label attribute classifier per box.

    Training adds ``loss_attributes`` (binary cross-entropy over the vocabulary, on the
    foreground proposals, targets = attributes of the matched ground-truth box;
    targets carry them as ``attributes`` (M, A) {0, 1}). Inference adds
    ``attribute_scores`` (K, A) sigmoid probabilities for the K final boxes.
    """

    def __init__(self, *args: Any, attribute_predictor: nn.Module, attribute_loss_weight: float):
        super().__init__(*args)
        self.attribute_predictor = attribute_predictor
        self.attribute_loss_weight = attribute_loss_weight

    def forward(
        self,
        features: dict[str, torch.Tensor],
        proposals: list[torch.Tensor],
        image_shapes: list[tuple[int, int]],
        targets: list[dict[str, torch.Tensor]] | None = None,
    ) -> tuple[list[dict[str, torch.Tensor]], dict[str, torch.Tensor]]:
        if self.training:
            if targets is None or any("attributes" not in t for t in targets):
                raise ValueError("training needs targets with boxes, labels and attributes")
            proposals, matched_idxs, labels, regression_targets = self.select_training_samples(
                proposals, targets
            )
        pooled = self.box_roi_pool(features, proposals, image_shapes)
        box_features = self.box_head(pooled)
        class_logits, box_regression = self.box_predictor(box_features)

        if self.training:
            assert targets is not None  # checked above, before sampling
            loss_classifier, loss_box_reg = fastrcnn_loss(
                class_logits, box_regression, labels, regression_targets
            )
            feats, classes, wanted = [], [], []
            for feat, lab, idx, t in zip(
                _attribute_input(box_features, pooled).split([len(p) for p in proposals]),
                labels,
                matched_idxs,
                targets,
                strict=True,
            ):
                pos = torch.where(lab > 0)[0]
                feats.append(feat[pos])
                classes.append(lab[pos])
                wanted.append(t["attributes"][idx[pos]].to(feat.dtype))
            pos_feats = torch.cat(feats)
            if len(pos_feats):
                loss_attr = F.binary_cross_entropy_with_logits(
                    self.attribute_predictor(pos_feats, torch.cat(classes)), torch.cat(wanted)
                )
            else:  # no foreground proposal in this batch: keep the graph, add nothing
                loss_attr = box_features.sum() * 0.0
            losses = {
                "loss_classifier": loss_classifier,
                "loss_box_reg": loss_box_reg,
                "loss_attributes": self.attribute_loss_weight * loss_attr,
            }
            return [], losses

        boxes, scores, labels = self.postprocess_detections(
            class_logits, box_regression, proposals, image_shapes
        )
        # As torchvision's mask branch does: the extra head runs on the final boxes.
        pooled = self.box_roi_pool(features, boxes, image_shapes)
        final = _attribute_input(self.box_head(pooled), pooled)
        logits = self.attribute_predictor(final, torch.cat(labels))
        attr = torch.sigmoid(logits).split([len(b) for b in boxes])
        result = [
            {"boxes": b, "labels": lab, "scores": s, "attribute_scores": a}
            for b, lab, s, a in zip(boxes, labels, scores, attr, strict=True)
        ]
        return result, {}


class AttributeFasterRCNN(FasterRCNN):
    """torchvision ``FasterRCNN`` with :class:`AttributeRoIHeads`; input images in [0, 1].

    ``model(images)`` in eval mode returns per image ``boxes`` (K, 4) pixels xyxy,
    ``labels`` (K,) in 1..num_classes (0 is background), ``scores`` (K,),
    ``attribute_scores`` (K, A) in [0, 1]; in train mode ``model(images, targets)``
    returns the loss dict (RPN, box and attribute losses).
    """

    roi_heads: AttributeRoIHeads  # replaced in __init__ (torchvision leaves it untyped)

    def __init__(self, spec: DetectorSpec):
        backbone, featmaps, anchors = _backbone(spec)
        # Both backbones set out_channels; nn.Module does not type it.
        channels = int(backbone.out_channels)  # type: ignore[arg-type]
        roi_pool = MultiScaleRoIAlign(
            featmap_names=featmaps, output_size=spec.roi_output_size, sampling_ratio=2
        )
        box_head = TwoMLPHead(channels * spec.roi_output_size**2, spec.representation_size)
        box_predictor = FastRCNNPredictor(spec.representation_size, spec.num_classes + 1)
        super().__init__(
            backbone,
            num_classes=None,
            min_size=spec.image_size,
            max_size=spec.image_size,
            image_mean=list(spec.mean),
            image_std=list(spec.std),
            rpn_anchor_generator=anchors,
            rpn_pre_nms_top_n_train=spec.rpn_pre_nms_top_n_train,
            rpn_post_nms_top_n_train=spec.rpn_post_nms_top_n_train,
            rpn_pre_nms_top_n_test=spec.rpn_pre_nms_top_n_test,
            rpn_post_nms_top_n_test=spec.rpn_post_nms_top_n_test,
            rpn_batch_size_per_image=spec.rpn_batch_size_per_image,
            box_roi_pool=roi_pool,
            box_head=box_head,
            box_predictor=box_predictor,
            box_score_thresh=spec.box_score_thresh,
            box_nms_thresh=spec.box_nms_thresh,
            box_detections_per_img=spec.detections_per_img,
            box_batch_size_per_image=spec.box_batch_size_per_image,
        )
        plain: RoIHeads = (
            self.roi_heads
        )  # the same components, re-wrapped with the attribute branch
        self.roi_heads = AttributeRoIHeads(
            plain.box_roi_pool,
            plain.box_head,
            plain.box_predictor,
            plain.proposal_matcher.high_threshold,
            plain.proposal_matcher.low_threshold,
            plain.fg_bg_sampler.batch_size_per_image,
            plain.fg_bg_sampler.positive_fraction,
            plain.box_coder.weights,
            plain.score_thresh,
            plain.nms_thresh,
            plain.detections_per_img,
            attribute_predictor=AttributePredictor(
                spec.representation_size + channels,
                spec.num_classes + 1,
                spec.num_attributes,
            ),
            attribute_loss_weight=spec.attribute_loss_weight,
        )
        self.spec = spec


def _backbone(spec: DetectorSpec) -> tuple[nn.Module, list[str], AnchorGenerator]:
    ratios = tuple(float(r) for r in spec.aspect_ratios)
    if spec.backbone == "tiny":
        backbone = TinyBackbone(spec.channels, spec.strides)
        sizes: tuple[tuple[int, ...], ...] = (tuple(int(s) for s in spec.anchor_sizes),)
        return backbone, ["0"], AnchorGenerator(sizes, (ratios,))
    # FPN gives 5 maps ("0".."3" and "pool"): one anchor size per level, BN trainable
    # because nothing is pretrained.
    backbone = resnet_fpn_backbone(
        backbone_name=spec.backbone, weights=None, norm_layer=nn.BatchNorm2d, trainable_layers=5
    )
    if len(spec.anchor_sizes) != 5:
        raise ValueError(f"a {spec.backbone} FPN backbone needs 5 anchor sizes, one per level")
    sizes = tuple((int(s),) for s in spec.anchor_sizes)  # one size per pyramid level
    return backbone, ["0", "1", "2", "3"], AnchorGenerator(sizes, (ratios,) * 5)


def build_detector(spec: DetectorSpec) -> AttributeFasterRCNN:
    """A freshly initialised detector (never pretrained weights from the internet)."""
    return AttributeFasterRCNN(spec)


def save_detector(path: Path | str, model: AttributeFasterRCNN, **metadata: Any) -> None:
    """Save spec and weights atomically, loadable with ``weights_only=True``."""
    payload = {
        "format": DETECTOR_FORMAT,
        "spec": {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(model.spec).items()},
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "metadata": metadata,
    }
    with atomic_output(path) as tmp:
        torch.save(payload, tmp)


def load_detector(path: Path | str, device: torch.device | str = "cpu") -> AttributeFasterRCNN:
    """Load a checkpoint written by :func:`save_detector`, in eval mode.

    Raises:
        CheckpointError: missing or unsafe file, not a detector, or weights that do
            not fit the stored spec.
    """
    obj = read_weights_file(path, device)
    if obj.get("format") != DETECTOR_FORMAT:
        raise CheckpointError(f"{path}: not an advinterp attribute detector checkpoint")
    model = build_detector(DetectorSpec.from_dict(obj["spec"]))
    try:
        model.load_state_dict(obj["state_dict"])
    except RuntimeError as err:
        first = str(err).splitlines()[0]
        raise CheckpointError(f"{path}: weights do not fit the stored spec: {first}") from None
    return model.to(device).eval()


def part_targets(
    xyxy: np.ndarray, part: np.ndarray, attributes: np.ndarray, size: tuple[int, int]
) -> dict[str, torch.Tensor]:
    """Detector targets of one image from the dataset's part boxes.

    Shape:
        xyxy: (M, 4) fractions of width/height; part: (M,) in [0, P);
        attributes: (M, A) {0, 1}; size: (H, W) pixels.
        returns: boxes (M, 4) float32 pixels, labels (M,) int64 in 1..P,
        attributes (M, A) float32.
    """
    h, w = size
    scale = torch.tensor([w, h, w, h], dtype=torch.float32)
    return {
        "boxes": torch.as_tensor(np.asarray(xyxy, np.float32)).reshape(-1, 4) * scale,
        "labels": torch.as_tensor(np.asarray(part, np.int64)) + 1,
        "attributes": torch.as_tensor(np.asarray(attributes, np.float32)),
    }


@dataclass(frozen=True)
class Detections:
    """Detections for N images, ragged: boxes of image i are rows ``offsets[i]:offsets[i+1]``.

    Shape:
        offsets: (N+1,) int64; xyxy: (M, 4) float32 fractions of width/height;
        part: (M,) int64 object class in [0, P) (background removed);
        score: (M,) float32 in [0, 1]; attribute_scores: (M, A) float32 in [0, 1].
    """

    offsets: np.ndarray
    xyxy: np.ndarray
    part: np.ndarray
    score: np.ndarray
    attribute_scores: np.ndarray

    def of(self, i: int) -> slice:
        return slice(int(self.offsets[i]), int(self.offsets[i + 1]))

    @property
    def num_images(self) -> int:
        return len(self.offsets) - 1

    @staticmethod
    def concat(parts: Sequence[Detections], num_attributes: int) -> Detections:
        if not parts:
            return Detections(
                np.zeros(1, np.int64),
                np.zeros((0, 4), np.float32),
                np.zeros(0, np.int64),
                np.zeros(0, np.float32),
                np.zeros((0, num_attributes), np.float32),
            )
        counts = np.concatenate([np.diff(p.offsets) for p in parts])
        return Detections(
            offsets=np.concatenate([[0], np.cumsum(counts)]).astype(np.int64),
            xyxy=np.concatenate([p.xyxy for p in parts]),
            part=np.concatenate([p.part for p in parts]),
            score=np.concatenate([p.score for p in parts]),
            attribute_scores=np.concatenate([p.attribute_scores for p in parts]),
        )


@torch.no_grad()
def detect(
    model: AttributeFasterRCNN,
    images: np.ndarray | torch.Tensor,
    batch_size: int,
    device: torch.device | str = "cpu",
    precision: Precision = "fp32",
) -> Detections:
    """Run Eq. 7 on a batch of images in eval mode (training mode restored afterwards).

    Args:
        precision: ``base.precision``: bf16 runs the detector under bfloat16 autocast
            (torchvision's box ops keep fp32 inside it); fp32 is bitwise the plain call.

    Shape:
        images: (N, 3, H, W) float32 in [0, 1].
    """
    images = torch.as_tensor(np.asarray(images, np.float32))
    device = torch.device(device)
    n, _, h, w = images.shape
    scale = torch.tensor([w, h, w, h], dtype=torch.float32)
    was_training = model.training
    model.eval()
    chunks: list[Detections] = []
    try:
        for s in range(0, n, batch_size):
            with autocast(device, precision):
                out = model(list(to_device(images[s : s + batch_size], device)))
            counts = [len(o["boxes"]) for o in out]
            cat = {k: torch.cat([o[k] for o in out]).cpu() for k in out[0]} if out else {}
            cat = {k: v.float() if v.is_floating_point() else v for k, v in cat.items()}
            chunks.append(
                Detections(
                    offsets=np.concatenate([[0], np.cumsum(counts)]).astype(np.int64),
                    xyxy=(cat["boxes"] / scale).clamp(0, 1).numpy().astype(np.float32),
                    part=(cat["labels"] - 1).numpy().astype(np.int64),
                    score=cat["scores"].numpy().astype(np.float32),
                    attribute_scores=cat["attribute_scores"].numpy().astype(np.float32),
                )
            )
    finally:
        model.train(was_training)
    return Detections.concat(chunks, model.spec.num_attributes)
