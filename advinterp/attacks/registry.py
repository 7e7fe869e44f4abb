"""L-inf attacks by name, all with one call signature (tests run every one of them).

Each entry is ``attack(model, x, y, *, eps, steps, step_size, targets, generator) -> x̂``
with x, x̂: (N, 3, H, W) float32 in [0, 1] and ``|x̂ - x|_inf <= eps``.
"""

from __future__ import annotations

from typing import Protocol

import torch
from torch import nn

from advinterp.attacks.ifgsm import ifgsm
from advinterp.attacks.pgd import pgd


class LinfAttack(Protocol):
    def __call__(
        self,
        model: nn.Module,
        x: torch.Tensor,
        y: torch.Tensor,
        *,
        eps: float,
        steps: int = ...,
        step_size: float | None = ...,
        targets: torch.Tensor | None = ...,
        generator: torch.Generator | None = ...,
    ) -> torch.Tensor: ...


LINF_ATTACKS: dict[str, LinfAttack] = {"ifgsm": ifgsm, "pgd": pgd}
