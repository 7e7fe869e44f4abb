"""In-memory chain stores (attack, sje, detect) for the grounding and distance tests.

A chain of 4 attacked images (dataset rows ``ROWS`` of a 5-image dataset), 2 classes,
3 attributes, the standard model and ``at_0.06``, budgets ``EPS``. Predictions are set
so the cases are countable by hand:

* standard, untargeted: images 0, 2, 3 fooled (image 1 stays correct);
* standard, targeted: images 0, 1 fooled;
* at_0.06, untargeted: images 0 and 3 correct (recovered), 1 correct, 2 wrong;
* at_0.06, targeted: image 2 fooled;
* the softmax predictions (attack store) are all correct: nothing is fooled.

Attributes: clean ones are ``φ(true)``; adversarial ones of a fooled image move 80% of
the way to ``φ(wrong)``, of an image that is not fooled stay at ``φ(true)``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import zarr
from zarr.storage import MemoryStore

from advinterp.data.adversarial import ChainLayout, ModelEntry, eps_key
from advinterp.store import write_array

MODELS = (ModelEntry("standard", None, "m.pt"), ModelEntry("at_0.06", 0.06, "a.pt"))
MODES = ("untargeted", "targeted")
EPS = (0.03, 0.06)
LAYOUT = ChainLayout(MODELS, MODES, EPS)
PHI = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]], np.float32)  # (C=2, A=3)
ROWS = np.array([1, 3, 0, 2])  # dataset rows of the attacked images
TRUE = np.array([0, 1, 0, 1])  # their classes
DATASET_LABELS = np.array([0, 0, 1, 1, 0])  # labels[ROWS] == TRUE
# adversarial predictions per (model, mode): wrong = 1 - true where fooled
ADV_PRED = {
    ("standard", "untargeted"): np.array([1, 1, 1, 0]),
    ("standard", "targeted"): np.array([1, 0, 0, 1]),
    ("at_0.06", "untargeted"): np.array([0, 1, 1, 1]),
    ("at_0.06", "targeted"): np.array([0, 1, 1, 1]),
}


def memory_group(arrays: Mapping[str, np.ndarray], attrs: Mapping[str, Any] | None = None):
    """A zarr group in memory holding ``arrays`` (path -> values)."""
    group = zarr.open_group(store=MemoryStore(), mode="w", zarr_format=3)
    group.attrs.update(dict(attrs or {}))
    for path, values in arrays.items():
        values = np.asarray(values)
        dims = tuple(f"d{i}" for i in range(values.ndim))
        write_array(group, path, values, dims=dims, chunk_size=4)
    return group


def adversarial_attributes(adv_pred: np.ndarray) -> np.ndarray:
    """Attributes of the adversarial images: 80% of the way to φ(wrong) where fooled."""
    fooled = adv_pred != TRUE
    moved = 0.2 * PHI[TRUE] + 0.8 * PHI[adv_pred]
    return np.where(fooled[:, None], moved, PHI[TRUE]).astype(np.float32)


def chain_stores(image_size: int = 8) -> tuple[zarr.Group, zarr.Group]:
    """The attack and SJE stores of the chain described above."""
    rng = np.random.default_rng(0)
    attack: dict[str, np.ndarray] = {"rows": ROWS, "labels": TRUE}
    sje: dict[str, np.ndarray] = {"rows": ROWS, "labels": TRUE, "class_embeddings": PHI}
    for m in MODELS:
        attack[f"{m.key}/clean_pred"] = TRUE
        sje[f"{m.key}/clean/pred"] = DATASET_LABELS
        sje[f"{m.key}/clean/attributes"] = PHI[DATASET_LABELS]
        for mode in MODES:
            for e in EPS:
                g = f"{m.key}/{mode}/{eps_key(e)}"
                pred = ADV_PRED[(m.key, mode)]
                shape = (len(ROWS), 3, image_size, image_size)
                attack[f"{g}/images"] = rng.random(shape, dtype=np.float32)
                attack[f"{g}/pred"] = TRUE  # softmax: never fooled
                sje[f"{g}/pred"] = pred
                sje[f"{g}/attributes"] = adversarial_attributes(pred)
    attrs = LAYOUT.to_attrs()
    return memory_group(attack, attrs), memory_group(sje, attrs)
