"""The ``lan_train`` section of params.yaml: the attention model g, a Latent Attention Network
(Grimm et al. Eq. 3).
"""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field, model_validator

from advinterp.config.core import FigureParams, Section


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
