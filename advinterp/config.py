"""Typed configuration: one frozen model per ``params.yaml`` section.

Parameters flow one way: ``params.yaml`` -> a section model checked here -> plain
function arguments in the library. A stage reads only the sections it declares in
``dvc.yaml``; a bad value fails at load with the file, the dotted key and the reason.

Each section model shares its name with the stage that reads it (``train`` is the
``train`` stage, ``stages/train.py`` and the ``train`` Prefect task).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from advinterp.errors import ParamError

DEFAULT_PARAMS = Path("params.yaml")


class Section(BaseModel):
    """Base of every params section: immutable, unknown keys are an error."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class BaseConfig(Section):
    """``base``: what every stage shares."""

    seed: int = Field(0, ge=0)
    device: str = Field("auto", pattern=r"^(auto|cpu|cuda(:\d+)?|mps)$")
    num_threads: int = Field(0, ge=0, description="torch CPU threads; 0 keeps torch's default")
    chunk_size: int = Field(
        64, ge=1, description="samples per zarr shard: the unit of streaming and of parallel work"
    )


class SyntheticConfig(Section):
    """``dataset.synthetic``: the embedded procedurally generated attribute dataset."""

    mode: Literal["fine", "coarse"] = "fine"
    num_classes: int = Field(20, ge=2)
    images_per_class: int = Field(80, ge=3)
    families: int = Field(
        5, ge=1, description="fine mode: classes derive from this many prototypes"
    )
    fine_differences: int = Field(
        3,
        ge=1,
        description="fine mode: attribute groups in which a class departs from its prototype",
    )
    dominance: tuple[float, float] = Field(
        (0.75, 0.95), description="range of a class's probability for its main value of a group"
    )
    dropout: float = Field(0.05, ge=0.0, lt=1.0, description="probability a part is not drawn")
    clutter: int = Field(6, ge=0, description="background clutter shapes per image")
    noise: float = Field(0.03, ge=0.0, le=0.5, description="std of Gaussian pixel noise")

    @model_validator(mode="after")
    def _check(self) -> SyntheticConfig:
        lo, hi = self.dominance
        if not 0.0 < lo <= hi <= 1.0:
            raise ValueError("dominance must satisfy 0 < low <= high <= 1")
        if self.families > self.num_classes:
            raise ValueError("families must not exceed num_classes")
        return self


class DatasetConfig(Section):
    """``dataset``: which source to read and how to shape its images."""

    source: Literal["synthetic", "cub", "awa2", "lad"] = "synthetic"
    root: Path | None = Field(None, description="dataset directory, for the real sources")
    image_size: int = Field(64, ge=8, le=1024)
    val_fraction: float = Field(0.1, ge=0.0, lt=1.0)
    test_fraction: float = Field(0.3, gt=0.0, lt=1.0)
    max_images: int | None = Field(
        None, ge=1, description="keep a class-stratified subset of this many images (quick runs)"
    )
    synthetic: SyntheticConfig = SyntheticConfig()

    @model_validator(mode="after")
    def _check(self) -> DatasetConfig:
        if self.source != "synthetic" and self.root is None:
            raise ValueError(f"source '{self.source}' needs dataset.root")
        if self.val_fraction + self.test_fraction >= 1.0:
            raise ValueError("val_fraction + test_fraction must leave images for training")
        return self


def _classifier_arch(name: str) -> str:
    """A name ``build_classifier`` knows (torchvision's classification models, the local ones)."""
    from advinterp.models.classifier import available_archs  # local: imports torchvision

    if name not in available_archs():
        raise ValueError(
            f"unknown model '{name}'; use a torchvision classification model name such as "
            "resnet152, or tiny_resnet or tiny_vgg"
        )
    return name


ClassifierArch = Annotated[str, AfterValidator(_classifier_arch)]
"""An architecture name ``build_classifier`` accepts."""


class TrainConfig(Section):
    """``train``: the classifier f (Gulshad et al.'s fine-tuned ResNet)."""

    arch: ClassifierArch = Field(
        "tiny_resnet", description="torchvision model name or 'tiny_resnet'"
    )
    weights: Path | None = Field(None, description="local state_dict to start from (never fetched)")
    epochs: int = Field(15, ge=1)
    batch_size: int = Field(64, ge=1)
    optimizer: Literal["sgd", "adam"] = "sgd"
    lr: float = Field(0.05, gt=0.0)
    momentum: float = Field(0.9, ge=0.0, lt=1.0)
    weight_decay: float = Field(5e-4, ge=0.0)
    label_smoothing: float = Field(0.0, ge=0.0, lt=1.0)
    augment: bool = True
    mean: tuple[float, float, float] = (0.485, 0.456, 0.406)
    std: tuple[float, float, float] = (0.229, 0.224, 0.225)

    @model_validator(mode="after")
    def _check(self) -> TrainConfig:
        if min(self.std) <= 0:
            raise ValueError("std must be positive")
        return self


class FeaturesConfig(Section):
    """``features``: penultimate-layer features θ(x)."""

    batch_size: int = Field(128, ge=1)


def _eps_list(values: tuple[float, ...]) -> tuple[float, ...]:
    """A sorted list of distinct L-inf budgets in (0, 1] (pixel units)."""
    if not values:
        raise ValueError("list at least one epsilon")
    if any(not 0.0 < e <= 1.0 for e in values):
        raise ValueError("every epsilon must lie in (0, 1] (pixel units)")
    if len(set(values)) != len(values):
        raise ValueError("epsilons must be distinct")
    return tuple(sorted(values))


EpsList = Annotated[tuple[float, ...], AfterValidator(_eps_list)]
"""A sorted tuple of distinct L-inf budgets in (0, 1], pixel units."""


class AttackConfig(Section):
    """``attack``: IFGSM (Gulshad et al. Eq. 1), untargeted and targeted, L-inf."""

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

    eps: EpsList = Field((0.02,), description="one robust model per training eps")
    alpha: float = Field(0.5, ge=0.0, le=1.0, description="weight of the clean loss in Eq. 2")
    steps: int = Field(3, ge=1, description="PGD steps per training batch")
    step_size: float | None = Field(None, gt=0.0, description="null = 2.5 eps / steps")
    epochs: int = Field(4, ge=1)
    batch_size: int = Field(64, ge=1)
    optimizer: Literal["sgd", "adam"] = "sgd"
    lr: float = Field(0.01, gt=0.0)
    momentum: float = Field(0.9, ge=0.0, lt=1.0)
    weight_decay: float = Field(5e-4, ge=0.0)
    augment: bool = True
    eval_steps: int = Field(10, ge=1, description="PGD steps of the robustness evaluation")
    eval_images: int | None = Field(200, ge=1, description="test images for the evaluation")


class SjeConfig(Section):
    """``sje``: structured joint embedding (Eqs. 3-6) on θ(x) of each model."""

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

    dpi: int = Field(120, ge=30, le=600)


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

    num_images: int = Field(20, ge=1, description="correctly classified test images to attack")
    target: int = Field(0, ge=0, description="the one target class of every attack")
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

    batch_size: int = Field(64, ge=1, description="images per gradient-explainer call")
    lime_segmentation: Literal["quickshift", "felzenszwalb"] = "quickshift"
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

    max_superpixels: int = Field(20, ge=1, description="n = 1..this (<= explain.lime_top)")
    figure_examples: int = Field(4, ge=1, description="examples in the Figure 3-style plot")
    overlap_fraction: float = Field(
        0.1, gt=0.0, le=1.0, description="top-pixel share compared between clean and adversarial"
    )
    dpi: int = Field(72, ge=30, le=600)


class LanTrainConfig(Section):
    """``lan_train``: the attention model g, a Latent Attention Network (Grimm et al. Eq. 3)."""

    arch: Literal["conv", "fc"] = Field(
        "conv", description="fully convolutional g, or the papers' fully connected one"
    )
    hidden: tuple[int, ...] = Field(
        (16, 32), min_length=1, description="conv: widths at 1/2 and 1/4 size; fc: layer widths"
    )
    beta: float = Field(3.0, gt=0.0, description="weight of the mask-keep penalty in Eq. 3")
    noise: Literal["bootstrap", "uniform", "constant"] = Field(
        "bootstrap", description="H: pixels of another training image | U[0,1] | constant grey"
    )
    noise_constant: float = Field(0.5, ge=0.0, le=1.0, description="value of 'constant' noise")
    output_loss: Literal["cross_entropy", "kl"] = Field(
        "kl", description="L_F: KL to f1's clean output, or CE against its clean decision"
    )
    epochs: int = Field(8, ge=1)
    batch_size: int = Field(64, ge=1)
    lr: float = Field(1e-3, gt=0.0, description="Adam learning rate")
    figure_classes: int = Field(10, ge=1, description="classes shown in the Figure 1 analogue")
    dpi: int = Field(100, ge=30, le=600)

    @model_validator(mode="after")
    def _check_hidden(self) -> LanTrainConfig:
        if any(h < 1 for h in self.hidden):
            raise ValueError("hidden widths must be >= 1")
        if self.arch == "conv" and len(self.hidden) != 2:
            raise ValueError("the conv LAN takes exactly two hidden widths")
        return self


class MaskClassifierConfig(Section):
    """``mask_classifier``: f2, a LeNet-style CNN on training-set masks (Nguyen et al.)."""

    epochs: int = Field(15, ge=1)
    batch_size: int = Field(64, ge=1)
    optimizer: Literal["sgd", "adam"] = "adam"
    lr: float = Field(2e-3, gt=0.0)
    momentum: float = Field(0.9, ge=0.0, lt=1.0)
    weight_decay: float = Field(1e-4, ge=0.0)
    dropout: float = Field(0.0, ge=0.0, lt=1.0)


class FgsmParams(Section):
    """FGSM (L-inf): one signed-gradient step."""

    eps: float = Field(0.03, gt=0.0, le=1.0, description="L-inf budget, pixel units")


class JsmaParams(Section):
    """JSMA (L0), Papernot et al. Algorithm 3, target = f's runner-up class."""

    theta: float = Field(1.0, ge=-1.0, le=1.0, description="change per chosen feature")
    gamma: float = Field(0.01, gt=0.0, le=1.0, description="largest fraction of features changed")
    candidates: int | None = Field(
        256, ge=2, description="features per image searched for pairs; null = all (O(n^2))"
    )

    @field_validator("theta")
    @classmethod
    def _check_theta(cls, v: float) -> float:
        if v == 0:
            raise ValueError("theta must be non-zero")
        return v


class CwParams(Section):
    """C&W-L2 through torchattacks.CW (no binary search over c)."""

    c: float = Field(1.0, gt=0.0)
    kappa: float = Field(0.0, ge=0.0, description="logit margin (confidence)")
    steps: int = Field(50, ge=1)
    lr: float = Field(0.01, gt=0.0)


class TransferParams(Section):
    """The second architecture the transfer setting crafts on (Nguyen et al. Table 3)."""

    arch: ClassifierArch = Field(
        "shufflenet_v2_x0_5", description="torchvision model name or tiny_resnet"
    )
    epochs: int = Field(10, ge=1)
    batch_size: int = Field(64, ge=1)
    optimizer: Literal["sgd", "adam"] = "sgd"
    lr: float = Field(0.05, gt=0.0)
    momentum: float = Field(0.9, ge=0.0, lt=1.0)
    weight_decay: float = Field(5e-4, ge=0.0)
    fgsm_eps: float = Field(
        0.1, gt=0.0, le=1.0, description="FGSM budget on the source model (transferability)"
    )
    cw_kappa: float = Field(
        5.0, ge=0.0, description="C&W confidence on the source model (transferability)"
    )


class LanAttacksConfig(Section):
    """``lan_attacks``: FGSM, JSMA, C&W against f1 and, for transfer, a second model."""

    max_images: int = Field(
        96, ge=1, description="correctly classified test images attacked (class-stratified)"
    )
    jsma_max_images: int = Field(32, ge=1, description="first images of that subset for JSMA")
    batch_size: int = Field(32, ge=1)
    fgsm: FgsmParams = FgsmParams()
    jsma: JsmaParams = JsmaParams()
    cw: CwParams = CwParams()
    transfer: TransferParams = TransferParams()


class LanDetectConfig(Section):
    """``lan_detect``: Nguyen et al. Tables 1-4, ROC/AUC, Figure 3 analogue."""

    batch_size: int = Field(128, ge=1)
    figure_examples: int = Field(2, ge=1, description="benign images in the Figure 3 analogue")
    dpi: int = Field(100, ge=30, le=600)


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

    eps: float = Field(0.02, gt=0.0, le=1.0, description="attack budget analysed (in attack.eps)")
    at_model: str = Field("auto", description="AT model key, or auto = nearest training eps")
    batch_size: int = Field(50, ge=1)


class GroundConfig(Section):
    """``ground``: Eqs. 16-17 selection, matching with detections, Figures 6-7."""

    classifier: Literal["sje", "softmax"] = Field(
        "sje", description="whose predictions decide correct/misclassified and the wrong class"
    )
    top_k: int = Field(10, ge=1, description="attributes selected per image (paper: 50/50/100)")
    attribute_thresh: float = Field(0.3, gt=0.0, lt=1.0, description="box carries attribute")
    box_thresh: float = Field(0.3, ge=0.0, lt=1.0, description="detections considered")
    iou_thresh: float = Field(0.5, gt=0.0, le=1.0, description="grounding vs part boxes")
    examples: int = Field(3, ge=1, description="examples per figure")
    max_listed: int = Field(8, ge=1, description="attributes listed under each image")
    dpi: int = Field(110, ge=30, le=600)


class DistancesConfig(Section):
    """``distances``: Eqs. 8-15 / Figure 5 on the most-changed attributes."""

    eps: float = Field(0.02, gt=0.0, le=1.0, description="budget of the Figure 5 histograms")
    classifier: Literal["sje", "softmax"] = "sje"
    at_model: str = Field("auto", description="AT model key, or auto = nearest training eps")
    fraction: float = Field(0.2, gt=0.0, le=1.0, description="most-changed attributes kept")
    scope: Literal["per_image", "global"] = "per_image"
    normalize: Literal["none", "l2"] = Field(
        "l2", description="l2: predicted attributes to unit norm like φ (SJE leaves scale free)"
    )
    bins: int = Field(20, ge=2)
    dpi: int = Field(110, ge=30, le=600)


class ScaleConfig(Section):
    """``scale``: how shard-mapped stages run (never what they compute).

    Read by the stages that map over samples but deliberately declared as a DVC param
    of none of them: a Dask run and a local run are cache hits for each other.
    """

    executor: Literal["local", "dask"] = Field(
        "local", description="local: shards in the stage's process; dask: prefect-dask tasks"
    )
    workers: int = Field(2, ge=1, description="worker processes of the temporary LocalCluster")
    threads_per_worker: int = Field(1, ge=1, description="torch threads in each Dask worker")
    address: str | None = Field(
        None, description="scheduler of a running Dask cluster (tcp://host:8786); null = local"
    )


class A2EAttackParams(Section):
    """Algorithms 1-2 of Jalwana et al. (attack to explain); paper values in brackets."""

    eta: float = Field(
        gt=0.0, description="l2 radius η in [0, 1] pixel units [10 at 224 px ~ 2.9 at 64 px]"
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


class A2ESecondModelConfig(Section):
    """``a2e_explain.second``: the other architecture, trained inside the stage."""

    arch: ClassifierArch = Field(
        "tiny_vgg", description="'tiny_vgg' or any name train.arch accepts"
    )
    epochs: int = Field(8, ge=1)
    batch_size: int = Field(64, ge=1)
    optimizer: Literal["sgd", "adam"] = "sgd"
    lr: float = Field(0.05, gt=0.0)
    momentum: float = Field(0.9, ge=0.0, lt=1.0)
    weight_decay: float = Field(5e-4, ge=0.0)
    augment: bool = True


class A2ERegionConfig(Section):
    """``a2e_explain.region``: region-specific semantics (Fig. 4)."""

    target: int | None = Field(None, ge=0, description="class; null = the first target")
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

    targets: list[int] = Field([3, 11, 17], min_length=1, description="target classes")
    seeds_per_target: int = Field(2, ge=2, description="perturbations per target, one seed each")
    num_samples: int = Field(32, ge=1, description="|D̄|: distribution samples [256]")
    eval_images: int = Field(
        200, ge=1, description="held-out non-target test images for the cross-model table"
    )
    attack: A2EAttackParams = A2EAttackParams(eta=8.0)
    second: A2ESecondModelConfig = A2ESecondModelConfig()
    region: A2ERegionConfig = A2ERegionConfig()
    dpi: int = Field(100, ge=30, le=600)


class A2EInpaintConfig(Section):
    """``a2e_robust.inpainting``: Eq. 4 with a square corrupt region."""

    images: int = Field(4, ge=1, description="test images restored (class-stratified)")
    mask_size: float = Field(0.25, gt=0.0, lt=1.0, description="side of F / image side")
    fill: float = Field(0.5, ge=0.0, le=1.0, description="value of the corrupted pixels")
    beta: float = Field(10.0, ge=0.0, description="β of Eq. 4 [10]")
    attack: A2EAttackParams = A2EAttackParams(eta=6.0, gamma=0.99, refine_every=0)


class A2ESketchConfig(Section):
    """``a2e_robust.sketch``: crude sketch -> target class image (Fig. 8)."""

    n_segments: int = Field(24, ge=2, description="SLIC blobs of the crude sketch")
    compactness: float = Field(10.0, gt=0.0)
    attack: A2EAttackParams = A2EAttackParams(eta=17.0, gamma=0.99)


class A2ERobustConfig(Section):
    """``a2e_robust``: generation, inpainting and manipulation with a robust classifier."""

    robust_model: str | None = Field(
        None, description="checkpoint stem in adv_train's models dir; null = largest train eps"
    )
    targets: list[int] = Field([3, 11], min_length=1, description="generation/sketch classes")
    seeds_per_target: int = Field(2, ge=1)
    num_samples: int = Field(32, ge=1, description="Gaussian draws forming D̄ [256]")
    downsample: int = Field(4, ge=1, description="Gaussian fitted at 1/downsample size [4]")
    ridge: float = Field(1e-4, ge=0.0, description="variance added to Σ's diagonal")
    generation: A2EAttackParams = A2EAttackParams(eta=11.0, gamma=0.99, refine_every=0)
    inpainting: A2EInpaintConfig = A2EInpaintConfig()
    sketch: A2ESketchConfig = A2ESketchConfig()
    pgd_step_size: float | None = Field(
        None, gt=0.0, description="baseline l2 PGD step; null = 2.5 η / steps"
    )
    dpi: int = Field(100, ge=30, le=600)


IganLayer = Literal["conv1", "conv2", "conv3", "conv4", "fc1", "fc2", "fc3"]


class PoolingCnnParams(Section):
    """``igan_train.classifier``: the paper's MNIST SmallCNN (4 conv, 2 pools, 3 FC) and its training."""

    pooling: Literal["max", "avg"] = "max"
    widths: tuple[int, int] = Field((8, 16), description="channels of conv1-2 and conv3-4")
    fc_width: int = Field(64, ge=1)
    input_size: int = Field(
        32, ge=8, description="the model average-pools its input to this side first (speed)"
    )
    batch_norm: bool = Field(True, description="BN after each conv (not in the paper's model)")
    epochs: int = Field(10, ge=1)
    batch_size: int = Field(64, ge=1)
    lr: float = Field(0.05, gt=0.0, description="SGD (Nesterov) learning rate, cosine decay")
    momentum: float = Field(0.9, ge=0.0, lt=1.0)
    weight_decay: float = Field(5e-4, ge=0.0)
    augment: bool = True

    @model_validator(mode="after")
    def _check(self) -> PoolingCnnParams:
        if min(self.widths) < 1:
            raise ValueError("widths must be positive")
        if self.input_size % 4:
            raise ValueError("input_size must be a multiple of 4 (two 2x2 poolings)")
        return self


class IganAdversarialParams(Section):
    """``igan_train.adversarial``: Eq. 2-style PGD adversarial training of the robust model."""

    eps: float = Field(0.03, gt=0.0, le=1.0, description="L-inf budget, pixel units")
    alpha: float = Field(0.5, ge=0.0, le=1.0, description="weight of the clean loss")
    steps: int = Field(3, ge=1, description="PGD steps per training batch")
    step_size: float | None = Field(None, gt=0.0, description="null = 2.5 eps / steps")


class IganGanParams(Section):
    """``igan_train.gan``: one InterpretGAN (C, G, D) per layer, Eq. 4."""

    layers: tuple[IganLayer, ...] = Field(
        ("conv1", "conv2", "conv3", "conv4", "fc1", "fc2", "fc3"),
        min_length=1,
        description="interpreted layers (Table 1's columns), in forward order",
    )
    lam: float = Field(1.0, ge=0.0, description="λ of the interpretability term (paper: 1)")
    code_dim: int = Field(32, ge=1, description="output size of the compression network C")
    compress_width: int = Field(8, ge=1)
    gen_width: int = Field(8, ge=1)
    disc_width: int = Field(8, ge=1)
    gen_size: int = Field(32, ge=4, description="G draws at this side; upsampled to the data's")
    epochs: int = Field(3, ge=1)
    batch_size: int = Field(16, ge=1)
    lr_g: float = Field(1e-3, gt=0.0, description="Adam lr of C and G")
    lr_d: float = Field(5e-4, gt=0.0, description="Adam lr of D")
    lr_decay: Literal["constant", "cosine"] = "cosine"
    d_steps: int = Field(1, ge=1, description="discriminator updates per generator update")
    warm_start: bool = Field(
        True, description="train the deepest layer first; start each G, D from the deeper one's"
    )

    @model_validator(mode="after")
    def _check(self) -> IganGanParams:
        order = ("conv1", "conv2", "conv3", "conv4", "fc1", "fc2", "fc3")
        if list(self.layers) != sorted(set(self.layers), key=order.index):
            raise ValueError("layers must be distinct and in forward order")
        side = self.gen_size // 4
        if self.gen_size % 4 or side & (side - 1):
            raise ValueError("gen_size must be 4 times a power of two (4, 8, 16, 32, ...)")
        return self


class IganTrainConfig(Section):
    """``igan_train``: a natural and a robust pooling CNN, and InterpretGANs for their layers."""

    classifier: PoolingCnnParams = PoolingCnnParams()
    adversarial: IganAdversarialParams = IganAdversarialParams()
    gan: IganGanParams = IganGanParams()


class IganExplainConfig(Section):
    """``igan_explain``: Figures 3/5 rows for natural and PGD images, beside captum baselines."""

    examples: int = Field(3, ge=1, description="correctly classified test images shown")
    eps: float = Field(0.03, gt=0.0, le=1.0, description="PGD L-inf budget, pixel units")
    steps: int = Field(40, ge=1, description="PGD steps (paper: PGD-40)")
    ig_steps: int = Field(32, ge=2, description="integrated-gradients path steps")
    occlusion_window: int = Field(8, ge=1, description="occluding square side, pixels")
    occlusion_stride: int = Field(4, ge=1)
    dpi: int = Field(100, ge=30, le=600)


class IganVulnerabilityConfig(Section):
    """``igan_vulnerability``: Acc_i and Vul_i of Eq. 5 (Table 1), max-pool index changes."""

    eps: float = Field(0.03, gt=0.0, le=1.0, description="PGD L-inf budget of D*, pixel units")
    steps: int = Field(40, ge=1, description="PGD steps (paper: PGD-40)")
    max_images: int | None = Field(
        200, ge=1, description="class-stratified test subset forming D*; null = whole test split"
    )
    batch_size: int = Field(128, ge=1)
    dpi: int = Field(100, ge=30, le=600)


class PoolingStudyConfig(Section):
    """``pooling_study``: max vs average pooling, adversarially trained alike (Tables 2-3)."""

    eps: float = Field(0.03, gt=0.0, le=1.0, description="L-inf budget of every attack")
    pgd_steps: tuple[int, int] = Field((10, 40), description="the two PGD step counts")
    mpgd_steps: int = Field(10, ge=1, description="momentum PGD (M-PGD) steps")
    mpgd_decay: float = Field(1.0, ge=0.0, description="momentum μ")
    max_images: int | None = Field(
        240, ge=1, description="class-stratified test subset; null = whole test split"
    )
    batch_size: int = Field(128, ge=1)

    @model_validator(mode="after")
    def _check(self) -> PoolingStudyConfig:
        if min(self.pgd_steps) < 1:
            raise ValueError("pgd_steps must be >= 1")
        return self


S = TypeVar("S", bound=Section)


def read_params(path: Path = DEFAULT_PARAMS) -> dict[str, Any]:
    """Read a params file as a plain mapping, with a clear error when it is unreadable."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text())
    except FileNotFoundError as err:
        raise ParamError(f"{path}: params file not found") from err
    except yaml.YAMLError as err:
        raise ParamError(f"{path}: not valid YAML: {' '.join(str(err).split())}") from None
    if not isinstance(raw, dict):
        raise ParamError(f"{path}: expected a mapping of sections at the top level")
    return raw


def load_section(model: type[S], name: str, path: Path = DEFAULT_PARAMS) -> S:
    """Validate section ``name`` of a params file into ``model``.

    Raises:
        ParamError: naming ``path``, the dotted key and what is wrong.
    """
    raw = read_params(path)
    return parse_section(model, name, raw.get(name, {}), source=str(path))


def parse_section(model: type[S], name: str, data: Any, source: str = "params") -> S:
    """Validate an in-memory mapping as section ``name`` (tests and flows use this)."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ParamError(f"{source}: section '{name}' must be a mapping")
    try:
        return model.model_validate(data)
    except ValidationError as err:
        problems = []
        for e in err.errors():
            key = ".".join([name, *(str(p) for p in e["loc"])])
            problems.append(f"{key}: {e['msg']} (got {e.get('input')!r})")
        raise ParamError(f"{source}: " + "; ".join(problems)) from None
