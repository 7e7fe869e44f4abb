"""Classic saliency: the input gradient of the explained class score.

Göpfert et al. Sec. 3 ("Classic Saliency"): pixel x_i is relevant to the prediction in
proportion to ∂f_y(x)/∂x_i. Computed with captum's ``Saliency`` with ``abs=False``, so
the sign survives: the evaluation keeps only positive gradients (Sec. 4, see
:func:`advinterp.analysis.localization.positive_l1`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

import torch
from captum.attr import Saliency
from torch import nn

from advinterp.explainers.protocol import Attribution, GradientExplainer, ShapeKind
from advinterp.models.frozen import frozen


def saliency(model: nn.Module, x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Signed gradient of the ``target`` logit with respect to the input pixels.

    The model is evaluated in eval mode with its parameters frozen; both are restored.

    Shape:
        x: (N, 3, H, W) float32 in [0, 1]; target: (N,) int64.
        returns: (N, 3, H, W) float32 (unbounded, signed).
    """
    with frozen(model):
        attr = Saliency(model).attribute(
            x.detach().clone().requires_grad_(True), target=target.to(x.device), abs=False
        )
    return attr.detach()


class SaliencyExplainer(GradientExplainer):
    """:func:`saliency` as an :class:`~advinterp.explainers.protocol.Explainer`.

    Args:
        batch_size: images per gradient call.
    """

    name: ClassVar[str] = "saliency"
    outputs: ClassVar[Mapping[str, tuple[ShapeKind, str]]] = {"saliency": ("image", "float32")}
    attribution: ClassVar[Attribution] = saliency
