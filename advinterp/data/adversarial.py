"""Names and layout shared by the attribute chain's stores (attack, features, SJE).

The stores of stages ``attack``, ``adv_features`` and ``sje`` are nested zarr groups
``<model>/<mode>/<eps_key>/...`` (see docs/artifacts.md). This module owns the names,
so readers never format or parse them by hand:

* model keys: ``standard`` for the trained classifier, ``at_<eps>`` for a model
  adversarially trained at that eps (``format(eps, "g")``);
* modes: ``untargeted``, ``targeted``; eps groups ``eps_<eps>``;
* the attack store's top-level ``clean`` array holds the attacked clean images, and its
  ``<model>/<mode>/<eps_key>/images`` are stored relative to them: read those with
  :func:`advinterp.store.decoded` or :func:`~advinterp.store.read_array` (bitwise the
  float32 images the attack made), never as raw zarr arrays.

:class:`ChainLayout` is written to and read from a store's attributes.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from advinterp.errors import StoreError

STANDARD = "standard"
MODES = ("untargeted", "targeted")
CLEAN = "clean"


def model_key(train_eps: float | None) -> str:
    """``standard`` for the trained classifier, ``at_<eps>`` for an adversarially trained one."""
    return STANDARD if train_eps is None else f"at_{train_eps:g}"


def eps_key(eps: float) -> str:
    """Group name of one attack budget, e.g. ``eps_0.06``."""
    return f"eps_{eps:g}"


@dataclass(frozen=True)
class ModelEntry:
    """A classifier of the chain: its key, its training eps (None = standard), its file."""

    key: str
    train_eps: float | None
    checkpoint: str


@dataclass(frozen=True)
class ChainLayout:
    """Which models, modes and budgets a chain store holds (its group structure)."""

    models: tuple[ModelEntry, ...]
    modes: tuple[str, ...]
    eps: tuple[float, ...]

    @property
    def eps_keys(self) -> list[str]:
        return [eps_key(e) for e in self.eps]

    @property
    def model_keys(self) -> list[str]:
        return [m.key for m in self.models]

    def image_sets(self) -> list[str]:
        """A model's image sets in store order: ``clean``, then every ``<mode>/<eps_key>``."""
        return [CLEAN, *(f"{mode}/{eps_key(e)}" for mode in self.modes for e in self.eps)]

    def adversarial_sets(self) -> Iterator[tuple[ModelEntry, str, float, str]]:
        """Every (model, mode, eps, group path ``model/mode/eps_key``) in store order."""
        for m in self.models:
            for mode in self.modes:
                for e in self.eps:
                    yield m, mode, e, f"{m.key}/{mode}/{eps_key(e)}"

    def require(
        self,
        group: Any,
        origin: str,
        *,
        per_model: Sequence[str] = (),
        per_set: Sequence[str] = (),
    ) -> None:
        """Check ``group`` holds ``<model>/<name>`` for every model and name of ``per_model``
        and ``<model>/<mode>/<eps_key>/<name>`` for every adversarial set and ``per_set``.

        Raises:
            StoreError: naming the store ``origin`` and the first missing array.
        """
        paths = [f"{m.key}/{name}" for m in self.models for name in per_model]
        paths += [f"{p}/{name}" for *_, p in self.adversarial_sets() for name in per_set]
        for path in paths:
            if path not in group:
                raise StoreError(
                    f"{origin}: missing array '{path}' (incomplete store: rerun the stage "
                    "that makes it)"
                )

    def to_attrs(self) -> dict[str, Any]:
        return {
            "models": [
                {"key": m.key, "train_eps": m.train_eps, "checkpoint": m.checkpoint}
                for m in self.models
            ],
            "modes": list(self.modes),
            "eps": list(self.eps),
            "eps_keys": self.eps_keys,
        }

    @classmethod
    def from_attrs(cls, attrs: Mapping[str, Any], origin: str) -> ChainLayout:
        """Read the layout a store recorded; ``origin`` names the store in errors."""
        try:
            models = tuple(
                ModelEntry(str(m["key"]), m["train_eps"], str(m["checkpoint"]))
                for m in attrs["models"]
            )
            return cls(models, tuple(attrs["modes"]), tuple(float(e) for e in attrs["eps"]))
        except (KeyError, TypeError) as err:
            raise StoreError(f"{origin}: not an attribute-chain store (missing {err})") from None


def finite(values: np.ndarray, origin: str) -> np.ndarray:
    """``values`` unchanged, or a StoreError naming ``origin`` if any is NaN or infinite.

    The chain's stores hold float features, logits and attributes; a NaN there (a
    diverged upstream run, a damaged file) would otherwise flow silently into argmax,
    SJE and the distance figures.
    """
    if not np.isfinite(values).all():
        bad = int(np.count_nonzero(~np.isfinite(values)))
        raise StoreError(f"{origin}: {bad} NaN or inf values (a broken upstream run?)")
    return values


def at_entries(entries: Sequence[ModelEntry]) -> list[ModelEntry]:
    """The adversarially trained models among ``entries``, by increasing training eps."""
    robust = [(m.train_eps, m) for m in entries if m.train_eps is not None]
    return [m for _, m in sorted(robust, key=lambda r: r[0])]
