"""Nguyen et al.'s three attacks as :class:`~advinterp.attacks.protocol.Attack` objects.

The paper evaluates its detector on one attack per distance measure (Sec. 3): FGSM
(L-inf), JSMA (L0) and C&W (L2). JSMA is targeted by construction; here its target is
the attacked model's runner-up class on the clean image (the nearest class, so the
fewest features need to change). :data:`REGISTRY` lists the attacks (tests run every
entry), :data:`ATTACKS` their names; :func:`lan_suite` configures them from the
``lan_attacks`` params.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal

import numpy as np
import torch
from torch import nn

from advinterp.attacks.cw import carlini_wagner
from advinterp.attacks.fgsm import fgsm
from advinterp.attacks.jsma import jsma
from advinterp.attacks.protocol import Attack
from advinterp.config.lan_attacks import LanAttacksConfig

Setting = Literal["direct", "transfer"]


@torch.no_grad()
def runner_up(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The second most likely class of each image, in eval mode (restored after).

    Shape:
        x: (N, C, H, W) float32 in [0, 1] -> (N,) int64 on x's device.
    """
    was_training = model.training
    model.eval()
    try:
        return model(x).topk(2, dim=1).indices[:, 1]
    finally:
        model.train(was_training)


@dataclass(frozen=True)
class Fgsm:
    """FGSM (Goodfellow et al., 2015), untargeted, L-inf budget ``eps`` (pixel units)."""

    eps: float
    name: ClassVar[str] = "fgsm"

    def __call__(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Shape: x (N, C, H, W) in [0, 1], y (N,) -> (N, C, H, W) in [0, 1], L-inf <= eps."""
        return fgsm(model, x, y, eps=self.eps)


@dataclass(frozen=True)
class Jsma:
    """JSMA (Papernot et al., 2016, Algorithm 3), L0, towards the runner-up class.

    ``y`` is not used: the target is ``model``'s second class on the clean image.
    """

    theta: float
    gamma: float
    candidates: int | None
    name: ClassVar[str] = "jsma"

    def __call__(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Shape: x (N, C, H, W) in [0, 1], y (N,) -> (N, C, H, W) in [0, 1]."""
        targets = runner_up(model, x)
        return jsma(
            model, x, targets, theta=self.theta, gamma=self.gamma, candidates=self.candidates
        )


@dataclass(frozen=True)
class CarliniWagner:
    """C&W-L2 (Carlini and Wagner, 2017) through torchattacks, untargeted."""

    c: float
    kappa: float
    steps: int
    lr: float
    name: ClassVar[str] = "cw"

    def __call__(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Shape: x (N, C, H, W) in [0, 1], y (N,) -> (N, C, H, W) in [0, 1]."""
        return carlini_wagner(model, x, y, c=self.c, kappa=self.kappa, steps=self.steps, lr=self.lr)


REGISTRY: tuple[type[Attack], ...] = (Fgsm, Jsma, CarliniWagner)
"""Nguyen et al.'s attacks, in the order results list them."""
ATTACKS: tuple[str, ...] = tuple(cls.name for cls in REGISTRY)
"""Their names, in the same order."""


def lan_suite(cfg: LanAttacksConfig, setting: Setting) -> tuple[Attack, ...]:
    """The three attacks configured for one setting of Nguyen et al. Sec. 3.

    The transfer setting crafts on a second model with a larger FGSM budget and a
    confident C&W margin (``cfg.transfer``) so that more examples transfer to f1.
    """
    direct = setting == "direct"
    return (
        Fgsm(cfg.fgsm.eps if direct else cfg.transfer.fgsm_eps),
        Jsma(cfg.jsma.theta, cfg.jsma.gamma, cfg.jsma.candidates),
        CarliniWagner(
            cfg.cw.c, cfg.cw.kappa if direct else cfg.transfer.cw_kappa, cfg.cw.steps, cfg.cw.lr
        ),
    )


def craft(
    attack: Attack, model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int
) -> torch.Tensor:
    """``attack`` applied to ``x`` in batches of ``batch_size``.

    Args:
        y: true classes (the images are expected to be classified correctly).

    Shape:
        x: (N, 3, H, W) float32 in [0, 1]; y: (N,) int64 -> (N, 3, H, W) float32 in [0, 1].
    """
    out = [
        attack(model, x[s : s + batch_size], y[s : s + batch_size])
        for s in range(0, len(x), batch_size)
    ]
    return torch.cat(out) if out else x.clone()


def perturbation_norms(x: np.ndarray, x_adv: np.ndarray) -> dict[str, np.ndarray]:
    """Per-image size of x_adv - x: L0 (changed components), changed pixels, L2, L-inf.

    Shape:
        x, x_adv: (N, C, H, W) -> each (N,) (float32; L0 and pixels are counts).
    """
    n, c = x.shape[0], x.shape[1]
    if n == 0:
        return {k: np.zeros(0, np.float32) for k in ("l0", "pixels", "l2", "linf")}
    d = (np.asarray(x_adv, np.float64) - np.asarray(x, np.float64)).reshape(n, c, -1)
    changed = np.abs(d) > 1e-6
    flat = d.reshape(n, -1)
    return {
        "l0": changed.reshape(n, -1).sum(1).astype(np.float32),
        "pixels": changed.any(1).sum(1).astype(np.float32),
        "l2": np.sqrt((flat**2).sum(1)).astype(np.float32),
        "linf": np.abs(flat).max(1).astype(np.float32),
    }
