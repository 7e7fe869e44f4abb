"""The image sets the attribute chain's detector runs on (Gulshad et al. Sec. 4.3).

At one attack budget: the attacked test subset clean (read from the dataset at the
attack store's rows) and perturbed, untargeted and targeted, against the standard
classifier and against the adversarially trained one paired with that budget.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import cast

import numpy as np
import zarr

from advinterp.data.adversarial import CLEAN, MODES, STANDARD, ChainLayout, eps_key
from advinterp.detection.sharded import ImageSet
from advinterp.errors import StoreError
from advinterp.grounding.cases import chain_at_model


@dataclass(frozen=True)
class ChainSets:
    """The sets at one eps: ``clean`` first, then ``<model>/<mode>`` for both models.

    Attributes:
        at_model: key of the adversarially trained model.
        eps_key: the budget's group name (``eps_0.06``).
        sets: the image sets, in output order.
    """

    at_model: str
    eps_key: str
    sets: tuple[ImageSet, ...]

    @property
    def names(self) -> list[str]:
        return [s.name for s in self.sets]


def chain_sets(
    dataset: Path, attack: Path, attack_group: zarr.Group, eps: float, at_choice: str
) -> ChainSets:
    """The clean and adversarial image sets of the attack store ``attack`` at ``eps``.

    Args:
        dataset, attack: paths of the dataset and attack stores (workers open them).
        attack_group: the attack store, opened.
        at_choice: ``detect.at_model`` (``auto`` = nearest training eps).

    Raises:
        ParamError: ``eps`` was not attacked or ``at_choice`` names no AT model.
        StoreError: an adversarial image array is missing.
    """
    layout = ChainLayout.from_attrs(attack_group.attrs, str(attack))
    at = chain_at_model(layout, eps, at_choice, "detect")
    ek = eps_key(eps)
    adversarial = [f"{m}/{mode}" for m in (STANDARD, at) for mode in MODES]
    for name in adversarial:
        if f"{name}/{ek}/images" not in attack_group:
            raise StoreError(f"{attack}: missing array '{name}/{ek}/images'; rerun attack")
    rows = np.asarray(cast(zarr.Array, attack_group["rows"])[:])
    sets = [ImageSet(CLEAN, dataset, "images", rows)]
    sets += [ImageSet(name, attack, f"{name}/{ek}/images") for name in adversarial]
    return ChainSets(at, ek, tuple(sets))
