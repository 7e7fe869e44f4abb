"""Attention-mask detection (Nguyen et al.): LAN masks, the mask classifier, attacks, detection."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field, field_validator, model_validator

from advinterp.config.core import ClassifierArch, FigureParams, Method, OptimizerParams, Section

LAN = Method(
    "lan",
    "Attention-mask detection",
    "Nguyen et al., Where classification fails, interpretation rises",
    3,
)


class LanTrainConfig(Section):
    """``lan_train``: the attention model g, a Latent Attention Network (Grimm et al. Eq. 3)."""

    section: ClassVar[str | None] = "lan_train"

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
    figure: FigureParams = FigureParams(dpi=100)

    @model_validator(mode="after")
    def _check_hidden(self) -> LanTrainConfig:
        if any(h < 1 for h in self.hidden):
            raise ValueError("hidden widths must be >= 1")
        if self.arch == "conv" and len(self.hidden) != 2:
            raise ValueError("the conv LAN takes exactly two hidden widths")
        return self


class MaskClassifierConfig(Section):
    """``mask_classifier``: f2, a LeNet-style CNN on training-set masks (Nguyen et al.)."""

    section: ClassVar[str | None] = "mask_classifier"

    epochs: int = Field(15, ge=1)
    batch_size: int = Field(64, ge=1)
    optimizer: OptimizerParams = OptimizerParams(
        name="adam", lr=2e-3, momentum=0.9, weight_decay=1e-4
    )
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
    optimizer: OptimizerParams = OptimizerParams(
        name="sgd", lr=0.05, momentum=0.9, weight_decay=5e-4
    )
    fgsm_eps: float = Field(
        0.1, gt=0.0, le=1.0, description="FGSM budget on the source model (transferability)"
    )
    cw_kappa: float = Field(
        5.0, ge=0.0, description="C&W confidence on the source model (transferability)"
    )


class LanAttacksConfig(Section):
    """``lan_attacks``: FGSM, JSMA, C&W against f1 and, for transfer, a second model."""

    section: ClassVar[str | None] = "lan_attacks"

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

    section: ClassVar[str | None] = "lan_detect"

    batch_size: int = Field(128, ge=1)
    figure_examples: int = Field(2, ge=1, description="benign images in the Figure 3 analogue")
    figure: FigureParams = FigureParams(dpi=100)
