"""The adversarial examples every method explains: one set, declared once.

Two groups of examples, each with its clean image and the class the standard
classifier gives the adversarial one:

* ``untargeted`` and ``targeted``: IFGSM at one eps against the standard classifier
  (the ``attack`` stage, Gulshad et al. Eq. 1), images it classifies correctly when
  clean and that the attack fools (a targeted attack: reaches its target), spread over
  the true classes round-robin;
* ``localized``: targeted BIM confined to one image region (the ``localized_attack``
  stage, Göpfert et al.), where the attacked region is known exactly.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import zarr

from advinterp.data.adversarial import MODES, STANDARD, ChainLayout, eps_key
from advinterp.data.rows import read_rows
from advinterp.errors import DatasetError, ParamError
from advinterp.store import decoded, read_array, require_array

GROUPS: tuple[str, ...] = (*MODES, "localized")


@dataclass(frozen=True)
class SharedExamples:
    """Adversarial examples with their clean images.

    Shape:
        group: (N,) str, one of :data:`GROUPS`; rows: (N,) int64 dataset rows of the
        clean images; clean, adversarial: (N, 3, H, W) float32 in [0, 1]; label: (N,)
        int64 true class; adv_class: (N,) int64 the standard classifier's class of the
        adversarial image; region: (N, H, W) bool the attacked region (all False where
        the attack is not localized); localized: (N,) bool.
    """

    group: np.ndarray
    rows: np.ndarray
    clean: np.ndarray
    adversarial: np.ndarray
    label: np.ndarray
    adv_class: np.ndarray
    region: np.ndarray
    localized: np.ndarray

    def __len__(self) -> int:
        return len(self.rows)

    @property
    def size(self) -> tuple[int, int]:
        """(H, W) of the images."""
        return int(self.clean.shape[-2]), int(self.clean.shape[-1])

    @staticmethod
    def concat(parts: Sequence[SharedExamples]) -> SharedExamples:
        """The examples of ``parts`` one after the other (at least one part)."""
        return SharedExamples(
            **{
                name: np.concatenate([getattr(p, name) for p in parts])
                for name in SharedExamples.__dataclass_fields__
            }
        )


def round_robin(labels: np.ndarray, n: int, seed: int) -> np.ndarray:
    """Positions of up to ``n`` items, one per class in turn (random order within a class).

    Shape: labels: (M,) int; returns (min(n, M),) int64, sorted.
    """
    rng = np.random.default_rng(seed)
    turn = np.empty(len(labels), np.int64)
    for c in np.unique(labels):
        members = np.flatnonzero(labels == c)
        turn[rng.permutation(members)] = np.arange(len(members))
    order = np.lexsort((labels, turn))
    return np.sort(order[:n]).astype(np.int64)


def ifgsm_examples(
    attack: zarr.Group,
    images: zarr.Array | np.ndarray,
    eps: float,
    per_mode: int,
    seed: int,
    origin: str,
) -> SharedExamples:
    """Fooled IFGSM examples of the standard classifier at ``eps``, ``per_mode`` per mode.

    Raises:
        ParamError: ``eps`` is not one of the store's budgets (``attack.eps``).

    Shape:
        images: (N_dataset, 3, H, W) the dataset's images, indexed by the store's rows.
    """
    layout = ChainLayout.from_attrs(attack.attrs, origin)
    if not any(math.isclose(e, eps) for e in layout.eps):
        raise ParamError(
            f"compare.eps={eps}: {origin} holds eps {list(layout.eps)} only (attack.eps)"
        )
    eps = next(e for e in layout.eps if math.isclose(e, eps))
    rows = read_array(attack, "rows", origin)
    labels = read_array(attack, "labels", origin)
    clean_pred = read_array(attack, f"{STANDARD}/clean_pred", origin)
    parts = []
    for mode in MODES:
        path = f"{STANDARD}/{mode}/{eps_key(eps)}"
        success = read_array(attack, f"{path}/success", origin)
        ok = np.flatnonzero(success & (clean_pred == labels))
        pos = ok[round_robin(labels[ok], per_mode, seed)]
        images_at = decoded(attack, f"{path}/images", origin)
        adv = np.asarray(images_at.get_orthogonal_selection((pos,)), np.float32)
        clean = read_rows(images, rows[pos]).numpy()
        n, size = len(pos), adv.shape[-2:]
        parts.append(
            SharedExamples(
                group=np.full(n, mode),
                rows=rows[pos].astype(np.int64),
                clean=clean,
                adversarial=adv,
                label=labels[pos].astype(np.int64),
                adv_class=read_array(attack, f"{path}/pred", origin)[pos].astype(np.int64),
                region=np.zeros((n, *size), bool),
                localized=np.zeros(n, bool),
            )
        )
    return SharedExamples.concat(parts)


def localized_examples(
    store: zarr.Group, images: zarr.Array | np.ndarray, n: int, seed: int, origin: str
) -> SharedExamples:
    """Up to ``n`` localized attacks, one per source image in turn, with their regions.

    Shape:
        images: the dataset's images, indexed by the store's ``source_rows``.
    """
    source = read_array(store, "source", origin)
    pos = round_robin(source, n, seed)
    rows = read_array(store, "source_rows", origin)[source[pos]].astype(np.int64)
    adv = np.asarray(
        require_array(store, "images", origin).get_orthogonal_selection((pos,)), np.float32
    )
    distinct, back = np.unique(rows, return_inverse=True)  # a source image attacked twice
    clean = read_rows(images, distinct).numpy()[back]
    return SharedExamples(
        group=np.full(len(pos), "localized"),
        rows=rows,
        clean=clean,
        adversarial=adv,
        label=read_array(store, "labels", origin)[pos].astype(np.int64),
        adv_class=read_array(store, "pred", origin)[pos].astype(np.int64),
        region=np.asarray(require_array(store, "region", origin).get_orthogonal_selection((pos,)))
        > 0,
        localized=np.ones(len(pos), bool),
    )


def require_examples(examples: SharedExamples, what: str) -> SharedExamples:
    """``examples`` unless it is empty (then a DatasetError naming ``what`` was searched)."""
    if len(examples) == 0:
        raise DatasetError(f"no example to compare: {what}")
    return examples
