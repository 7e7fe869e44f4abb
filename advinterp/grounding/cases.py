"""Which images the grounding and distance analyses look at (Gulshad et al. Sec. 4.2-4.3).

* ``fooled``: correctly classified when clean, misclassified when perturbed (the
  untargeted and targeted rows of Figure 6, panels (a) and (c) of Figure 5);
* ``recovered``: misclassified when perturbed against the standard model, classified
  correctly with adversarial training (the last row of Figure 6, panel (b));
* the AT model used next to attacks of budget ``eps`` is the one trained at the
  nearest eps (the paper trains one robust model per eps), unless one is named;
* the few eligible images a figure shows: one per true class first.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from advinterp.data.adversarial import ChainLayout, ModelEntry, at_entries
from advinterp.errors import ParamError


def fooled(true: np.ndarray, clean_pred: np.ndarray, adv_pred: np.ndarray) -> np.ndarray:
    """Mask of images correct when clean and wrong when perturbed. Shape: (N,) each -> (N,) bool."""
    true = np.asarray(true)
    return (np.asarray(clean_pred) == true) & (np.asarray(adv_pred) != true)


def recovered(true: np.ndarray, adv_pred: np.ndarray, adv_pred_at: np.ndarray) -> np.ndarray:
    """Mask of images wrong when perturbed (standard) and right under AT. Shape: (N,) -> (N,) bool."""
    true = np.asarray(true)
    return (np.asarray(adv_pred) != true) & (np.asarray(adv_pred_at) == true)


def pick_at_model(models: Sequence[ModelEntry], eps: float, choice: str = "auto") -> str:
    """Key of the adversarially trained model to pair with attacks of budget ``eps``.

    Args:
        models: the chain's models (``ChainLayout.models`` of the attack store).
        choice: ``auto`` (nearest training eps; the lower one on a tie) or an explicit
            key such as ``at_0.06``.

    Raises:
        ValueError: no adversarially trained model, or ``choice`` is not among them.
    """
    robust = at_entries(models)
    if not robust:
        raise ValueError("no adversarially trained model in the attack store")
    if choice == "auto":
        # at_entries keeps only models with a training eps
        return min(robust, key=lambda m: abs(float(m.train_eps or 0.0) - eps)).key
    keys = [m.key for m in robust]
    if choice not in keys:
        raise ValueError(f"model '{choice}' not among the adversarially trained ones: {keys}")
    return choice


def chain_at_model(layout: ChainLayout, eps: float, choice: str, section: str) -> str:
    """:func:`pick_at_model` for a chain store's models, after checking ``eps`` was attacked.

    Args:
        layout: the chain store's layout (its eps grid and models).
        section: the params section ``eps`` and ``choice`` come from (named in errors).

    Raises:
        ParamError: ``eps`` is not in the grid, or ``choice`` names no AT model.
    """
    if not any(math.isclose(eps, e) for e in layout.eps):
        raise ParamError(f"{section}.eps: {eps} is not in the attack's eps grid {list(layout.eps)}")
    try:
        return pick_at_model(layout.models, eps, choice)
    except ValueError as err:
        raise ParamError(f"{section}.at_model: {err}") from None


def example_images(picked: np.ndarray, true: np.ndarray, count: int) -> list[int]:
    """The first ``count`` of ``picked``, one per true class while classes last.

    Shape:
        picked: (n,) int positions of eligible images, increasing; true: (N,) int classes.
        returns: up to ``count`` positions, those of new classes first.
    """
    chosen: list[int] = []
    for i in picked:
        if int(true[i]) not in {int(true[j]) for j in chosen}:
            chosen.append(int(i))
        if len(chosen) == count:
            return chosen
    rest = [int(i) for i in picked if int(i) not in chosen]
    return chosen + rest[: count - len(chosen)]
