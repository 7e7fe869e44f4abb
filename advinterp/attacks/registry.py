"""L-inf attacks by name, all with one call signature (tests run every one of them).

Each entry is a :class:`~advinterp.attacks.ifgsm.SignGradientAttack`,
``attack(model, x, y, *, eps, steps, step_size, targets, generator) -> x̂`` with x, x̂:
(N, 3, H, W) float32 in [0, 1] and ``|x̂ - x|_inf <= eps``.
"""

from __future__ import annotations

from advinterp.attacks.ifgsm import SignGradientAttack, ifgsm
from advinterp.attacks.pgd import pgd

LinfAttack = SignGradientAttack
"""The type of every :data:`LINF_ATTACKS` entry."""

LINF_ATTACKS: dict[str, LinfAttack] = {"ifgsm": ifgsm, "pgd": pgd}
