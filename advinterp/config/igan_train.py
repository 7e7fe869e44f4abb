"""The ``igan_train`` section of params.yaml: a natural and a robust pooling CNN, and
InterpretGANs for their layers.
"""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field, model_validator

from advinterp.config.core import OptimizerParams, Section
from advinterp.config.igan import IganLayer


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
    optimizer: OptimizerParams = Field(
        OptimizerParams(name="sgd", lr=0.05, momentum=0.9, weight_decay=5e-4),
        description="SGD with Nesterov momentum and cosine decay (the only choice here)",
    )
    augment: bool = True

    @model_validator(mode="after")
    def _check(self) -> PoolingCnnParams:
        if min(self.widths) < 1:
            raise ValueError("widths must be positive")
        if self.optimizer.name != "sgd":
            raise ValueError("optimizer.name: the pooling CNN trains with SGD (Nesterov)")
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

    section: ClassVar[str | None] = "igan_train"

    classifier: PoolingCnnParams = PoolingCnnParams()
    adversarial: IganAdversarialParams = IganAdversarialParams()
    gan: IganGanParams = IganGanParams()
