"""Classic saliency: the input gradient of the explained class's objective (Göpfert et al.).

Göpfert et al. Sec. 3 ("Classic Saliency") highlight pixel x_i by the gradient
∂J(x, y)/∂x_i, J the network's objective; Sec. 4 then discards negative gradients "in
order to interpret the saliency maps accordingly" to LIME's superpixels that "contribute
towards" the prediction. The paper never fixes J's sign: as the training loss
(cross-entropy, the J of FGSM, Sec. 2) a positive ∂J/∂x_i marks a pixel whose increase
*lowers* p(y|x), the opposite of what Sec. 4 wants to keep. :data:`SaliencyForm` names
the readings, all computed with captum's ``Saliency`` (``abs=False``) and then clamped
at zero, so the map holds exactly what the paper keeps:

* ``log_prob`` (default): J = log p(y|x) = -CE(f(x), y), so positive means "supports
  y", as Sec. 4 states: relu(-∂CE/∂x).
* ``loss``: J = CE(f(x), y) taken literally: relu(∂CE/∂x).
* ``logit``: the class score f_y of Grad-CAM (Selvaraju et al., the paper's ref. [8]):
  relu(∂f_y/∂x), this module's form before the paper's was implemented.

:func:`saliency` (signed logit gradient) stays for the InterpretGAN baselines.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import partial
from typing import ClassVar, Literal, get_args

import torch
import torch.nn.functional as F
from captum.attr import Saliency
from torch import nn

from advinterp.explainers.protocol import (
    Attribution,
    GradientExplainer,
    ShapeKind,
)
from advinterp.models.frozen import frozen

SaliencyForm = Literal["log_prob", "loss", "logit"]
SALIENCY_FORMS: tuple[str, ...] = get_args(SaliencyForm)


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


def _objective(model: nn.Module, form: SaliencyForm) -> Callable[..., torch.Tensor]:
    """The per-sample J(x, y) of ``form`` as captum's forward function of (x, y)."""
    if form == "logit":
        return lambda x, y: model(x).gather(1, y[:, None])[:, 0]
    sign = -1.0 if form == "log_prob" else 1.0
    # Per sample (reduction="none"): captum sums the outputs, and the samples of an
    # eval-mode model do not interact, so each row gets its own gradient.
    return lambda x, y: sign * F.cross_entropy(model(x), y, reduction="none")


def objective_saliency(
    model: nn.Module, x: torch.Tensor, target: torch.Tensor, form: SaliencyForm = "log_prob"
) -> torch.Tensor:
    """relu(∂J(x, y)/∂x) for J of ``form`` (see the module docstring), y = ``target``.

    The model is evaluated in eval mode with its parameters frozen; both are restored.

    Shape:
        x: (N, 3, H, W) float32 in [0, 1]; target: (N,) int64.
        returns: (N, 3, H, W) float32, >= 0 (negative gradients discarded, Sec. 4).
    """
    if form not in SALIENCY_FORMS:
        raise ValueError(f"unknown saliency form {form!r} (one of {SALIENCY_FORMS})")
    with frozen(model):
        attr = Saliency(_objective(model, form)).attribute(
            x.detach().clone().requires_grad_(True),
            abs=False,
            additional_forward_args=(target.to(x.device),),
        )
    return attr.detach().clamp_min(0.0)


@dataclass(frozen=True)
class SaliencyExplainer(GradientExplainer):
    """:func:`objective_saliency` as an :class:`~advinterp.explainers.protocol.Explainer`.

    Args:
        batch_size: images per gradient call.
        form: which J (``explain.saliency``).
    """

    name: ClassVar[str] = "saliency"
    outputs: ClassVar[Mapping[str, tuple[ShapeKind, str]]] = {"saliency": ("image", "float32")}
    attribution: ClassVar[Attribution] = objective_saliency
    form: SaliencyForm = "log_prob"

    def bound_attribution(self) -> Attribution:
        """:func:`objective_saliency` with this explainer's form: maps (N, C, H, W) >= 0."""
        return partial(objective_saliency, form=self.form)
