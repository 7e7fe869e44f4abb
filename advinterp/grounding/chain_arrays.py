"""Predictions and predicted attributes of the attacked subset, from the chain's stores.

The grounding (Sec. 4.3) and distance (Sec. 4.2) analyses read, per model, attack mode
and budget, which class an image is given (SJE's nearest class embedding, or the
softmax classifier's argmax) and SJE's predicted attributes ``θ(x)W``. The attack store
holds the softmax predictions of the attacked subset; the SJE store its own predictions
and attributes, clean ones for every dataset row. :class:`ChainArrays` hides that layout:
everything it returns is aligned with the attacked subset (position ``i`` = image
``rows[i]`` of the dataset).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import zarr

from advinterp.data.adversarial import CLEAN, finite
from advinterp.errors import StoreError
from advinterp.store import DecodedArray, decoded

Classifier = Literal["sje", "softmax"]


def store_origin(node: zarr.Group | zarr.Array) -> str:
    """The path of the store ``node`` lives in (as it was opened), to name it in errors."""
    return str(getattr(node.store, "root", node.store))


def array_at(group: zarr.Group, path: str) -> zarr.Array:
    """The array at ``path`` (zarr types a member as array or group).

    Raises:
        StoreError: ``path`` is a group.
    """
    node = group[path]
    if not isinstance(node, zarr.Array):
        raise StoreError(f"{store_origin(group)}: '{path}' is a group, not an array")
    return node


def read_array(group: zarr.Group, path: str) -> np.ndarray:
    """All values of the array at ``path``."""
    return np.asarray(array_at(group, path)[:])


@dataclass(frozen=True)
class ChainArrays:
    """Read the attacked subset's predictions and attributes at any (model, mode, eps).

    Attributes:
        attack: the attack store (``<model>/clean_pred``, ``<model>/<mode>/<eps>/pred``
            and ``.../images`` over the attacked subset).
        sje: the SJE store (``<model>/clean/{pred,attributes}`` over every dataset row,
            ``<model>/<mode>/<eps>/{pred,attributes}`` over the attacked subset).
        rows: (n,) int64 dataset rows of the attacked subset.
        classifier: whose predictions decide correct and wrong: ``sje`` or ``softmax``.
    """

    attack: zarr.Group
    sje: zarr.Group
    rows: np.ndarray
    classifier: Classifier = "sje"

    def _read(self, store: zarr.Group, path: str) -> np.ndarray:
        if path not in store:
            raise StoreError(
                f"{store_origin(store)}: missing '{path}' (rerun the stage that makes it)"
            )
        values = read_array(store, path)
        if values.dtype.kind == "f":  # attributes: a NaN would flow into every margin
            finite(values, f"{store_origin(store)}/{path}")
        return values

    def pred(self, model: str, mode: str | None = None, eps_key: str | None = None) -> np.ndarray:
        """Predicted class of each attacked image, clean when ``mode`` is None.

        Shape:
            returns: (n,) int64 class indices.
        """
        if self.classifier == "softmax":
            if mode is None:
                return self._read(self.attack, f"{model}/clean_pred")
            return self._read(self.attack, f"{model}/{mode}/{eps_key}/pred")
        return self._sje(model, mode, eps_key, "pred")

    def attributes(
        self, model: str, mode: str | None = None, eps_key: str | None = None
    ) -> np.ndarray:
        """SJE's predicted attributes of each attacked image, clean when ``mode`` is None.

        Shape:
            returns: (n, A) float32, finite (a NaN raises StoreError).
        """
        return self._sje(model, mode, eps_key, "attributes")

    def images(self, model: str, mode: str, eps_key: str) -> zarr.Array | DecodedArray:
        """The adversarial images (not read: index it; decoded from the store's encoding).

        Shape: (n, 3, H, W) float32 in [0, 1].
        """
        path = f"{model}/{mode}/{eps_key}/images"
        return decoded(self.attack, path, store_origin(self.attack))

    def _sje(self, model: str, mode: str | None, eps_key: str | None, what: str) -> np.ndarray:
        if mode is None:  # clean arrays cover every dataset row: take the attacked ones
            return self._read(self.sje, f"{model}/{CLEAN}/{what}")[self.rows]
        return self._read(self.sje, f"{model}/{mode}/{eps_key}/{what}")
