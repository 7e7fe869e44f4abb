"""InterpretGAN (Zheng et al.): the method and the layer names its stages share. Each
stage's section model is in ``advinterp/config/<section>.py``.
"""

from __future__ import annotations

from typing import Literal

from advinterp.config.core import Method

IganLayer = Literal["conv1", "conv2", "conv3", "conv4", "fc1", "fc2", "fc3"]


IGAN = Method(
    "igan",
    "InterpretGAN",
    "Zheng et al., InterpretGAN: understanding and diagnosing vulnerability",
    5,
)
