"""The ``lan_attacks`` section of params.yaml: FGSM, JSMA, C&W against f1 and, for transfer, a
second model.
"""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field, field_validator

from advinterp.config.core import ClassifierArch, OptimizerParams, Section


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
