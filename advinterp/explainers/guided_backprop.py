"""Guided backpropagation (Springenberg et al. 2014) through captum.

Göpfert et al. Sec. 3: the input gradient with negative gradients truncated at every
ReLU on the way back. captum's ``GuidedBackprop`` hooks each ``nn.ReLU`` *module*
(a functional ``F.relu`` is not guided, so a model without ReLU modules is refused).

In-place ReLUs: torchvision's ``BasicBlock`` (and so ``tiny_resnet``) uses
``nn.ReLU(inplace=True)`` and calls the same module twice per block. captum's hooks
clone each ReLU's input in a forward pre-hook, which happens to keep the in-place op off
the caller's tensor, but correctness should not rest on that detail: for the duration
of the call every ReLU is switched to ``inplace=False`` (restored in ``finally``), and
``tests/explainers/test_guided_backprop.py`` checks the result against an independent
guided-ReLU implementation and that the model is restored.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator, Mapping
from typing import ClassVar

import torch
from captum.attr import GuidedBackprop
from torch import nn

from advinterp.explainers.protocol import Attribution, GradientExplainer, ShapeKind
from advinterp.models.frozen import frozen


@contextlib.contextmanager
def relus_not_inplace(model: nn.Module) -> Iterator[list[nn.ReLU]]:
    """Set ``inplace=False`` on every ``nn.ReLU`` of ``model``; restore the flags on exit."""
    relus = [m for m in model.modules() if isinstance(m, nn.ReLU)]
    flags = [m.inplace for m in relus]
    for m in relus:
        m.inplace = False
    try:
        yield relus
    finally:
        for m, flag in zip(relus, flags, strict=True):
            m.inplace = flag


def guided_backprop(model: nn.Module, x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Guided-backprop attribution of the ``target`` logit to the input pixels.

    The model is left exactly as found: eval/train mode, ``requires_grad``, ReLU
    ``inplace`` flags, and no hooks.

    Raises:
        ValueError: the model has no ``nn.ReLU`` modules (guided backprop would silently
            degrade to the plain gradient).

    Shape:
        x: (N, 3, H, W) float32 in [0, 1]; target: (N,) int64.
        returns: (N, 3, H, W) float32 (signed).
    """
    with frozen(model), relus_not_inplace(model) as relus:
        if not relus:
            raise ValueError(
                f"{type(model).__name__} has no nn.ReLU modules: captum's guided backprop "
                "only guides ReLU modules, not functional relu calls"
            )
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Setting backward hooks on ReLU")
            attr = GuidedBackprop(model).attribute(
                x.detach().clone().requires_grad_(True), target=target.to(x.device)
            )
    return attr.detach()


class GuidedBackpropExplainer(GradientExplainer):
    """:func:`guided_backprop` as an :class:`~advinterp.explainers.protocol.Explainer`.

    Args:
        batch_size: images per gradient call.
    """

    name: ClassVar[str] = "guided_backprop"
    outputs: ClassVar[Mapping[str, tuple[ShapeKind, str]]] = {
        "guided_backprop": ("image", "float32")
    }
    attribution: ClassVar[Attribution] = guided_backprop
