"""Nguyen et al.'s three attacks behind one call: FGSM (L-inf), JSMA (L0), C&W (L2).

The paper evaluates its detector on one attack per distance measure (Sec. 3). JSMA is
targeted by construction; here its target is the attacked model's runner-up class on
the clean image (the nearest class, so the fewest features need to change).
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch
from torch import nn

from advinterp.attacks.cw import carlini_wagner
from advinterp.attacks.fgsm import fgsm
from advinterp.attacks.jsma import jsma

AttackName = Literal["fgsm", "jsma", "cw"]
ATTACKS: tuple[AttackName, ...] = ("fgsm", "jsma", "cw")


@torch.no_grad()
def predict(model: nn.Module, x: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
    """Top class of ``model`` for (N, C, H, W) images in eval mode (restored after): (N,)."""
    was_training = model.training
    model.eval()
    try:
        out = [model(x[s : s + batch_size]).argmax(1) for s in range(0, len(x), batch_size)]
    finally:
        model.train(was_training)
    return torch.cat(out) if out else torch.zeros(0, dtype=torch.long)


@torch.no_grad()
def runner_up(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The second most likely class of each image: (N,) int64."""
    was_training = model.training
    model.eval()
    try:
        return model(x).topk(2, dim=1).indices[:, 1]
    finally:
        model.train(was_training)


def craft(
    name: AttackName,
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    batch_size: int,
    fgsm_eps: float,
    jsma_theta: float,
    jsma_gamma: float,
    jsma_candidates: int | None,
    cw_c: float,
    cw_kappa: float,
    cw_steps: int,
    cw_lr: float,
) -> torch.Tensor:
    """Adversarial examples of ``x`` against ``model`` by attack ``name``, in batches.

    Args:
        y: true classes (the images are expected to be classified correctly).

    Shape:
        x: (N, 3, H, W) float32 in [0, 1]; y: (N,) int64 -> (N, 3, H, W) float32 in [0, 1].
    """
    out = []
    for s in range(0, len(x), batch_size):
        xb, yb = x[s : s + batch_size], y[s : s + batch_size]
        if name == "fgsm":
            out.append(fgsm(model, xb, yb, eps=fgsm_eps))
        elif name == "jsma":
            targets = runner_up(model, xb)
            out.append(
                jsma(
                    model,
                    xb,
                    targets,
                    theta=jsma_theta,
                    gamma=jsma_gamma,
                    candidates=jsma_candidates,
                )
            )
        elif name == "cw":
            out.append(
                carlini_wagner(model, xb, yb, c=cw_c, kappa=cw_kappa, steps=cw_steps, lr=cw_lr)
            )
        else:
            raise ValueError(f"unknown attack {name!r}; use one of {ATTACKS}")
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
