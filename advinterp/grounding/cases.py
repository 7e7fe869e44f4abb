"""Which images the grounding and distance analyses look at (Gulshad et al. Sec. 4.2-4.3).

* ``fooled``: correctly classified when clean, misclassified when perturbed (the
  untargeted and targeted rows of Figure 6, panels (a) and (c) of Figure 5);
* ``recovered``: misclassified when perturbed against the standard model, classified
  correctly with adversarial training (the last row of Figure 6, panel (b));
* the AT model used next to attacks of budget ``eps`` is the one trained at the
  nearest eps (the paper trains one robust model per eps), unless one is named.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from advinterp.data.adversarial import ModelEntry, at_entries


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
        return min(robust, key=lambda m: abs(float(m.train_eps) - eps)).key
    keys = [m.key for m in robust]
    if choice not in keys:
        raise ValueError(f"model '{choice}' not among the adversarially trained ones: {keys}")
    return choice
