"""One interface for Göpfert et al.'s explainers (Sec. 3): a name, its arrays, ``explain``.

Every explainer explains given target classes of a batch of images and returns named
per-image arrays (saliency: one gradient map; LIME: superpixels, the kept positive
ones, their weights, ...). ``outputs`` declares each array's per-image shape kind and
dtype, so a store can be laid out before anything runs and a result checked against it.
Random explainers seed each example from where it sits in its image set
(:class:`ExampleSlice`), so a set explained in pieces equals one call.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Literal, Protocol, runtime_checkable

import numpy as np
import torch
from torch import nn

from advinterp.progress import track

# Per-image shape of an output: (C, H, W), (H, W), (T,) with T kept ranks, or scalar.
ShapeKind = Literal["image", "map", "rank", "one"]


@dataclass(frozen=True)
class ExampleSlice:
    """Where a batch of images sits: example i is ``start + i`` of image set ``image_set``.

    Random explainers seed example i from ``(seed, image_set, start + i)``; ``desc``
    labels progress logs only.
    """

    seed: int
    image_set: int = 0
    start: int = 0
    desc: str = "explain"


@runtime_checkable
class Explainer(Protocol):
    """An explainer of a classifier's decision for given classes.

    Attributes:
        name: the explainer's name in stores, tables and figures.
        outputs: array key -> (per-image shape kind, dtype) of what :meth:`explain` returns.
    """

    name: ClassVar[str]
    outputs: ClassVar[Mapping[str, tuple[ShapeKind, str]]]

    def explain(
        self,
        model: nn.Module,
        images: np.ndarray,
        targets: np.ndarray,
        *,
        device: torch.device,
        where: ExampleSlice,
    ) -> dict[str, np.ndarray]:
        """Explain ``targets[i]`` for ``images[i]``; the model is left as found.

        Shape:
            images: (N, 3, H, W) float32 in [0, 1]; targets: (N,) int64.
            returns: key -> (N, *per-image shape) of the declared dtype.
        """
        ...


Attribution = Callable[[nn.Module, torch.Tensor, torch.Tensor], torch.Tensor]


def batched_attribution(
    fn: Attribution,
    model: nn.Module,
    images: np.ndarray,
    targets: np.ndarray,
    batch_size: int,
    device: torch.device,
) -> np.ndarray:
    """``fn(model, x, t)`` over consecutive batches of ``batch_size`` images, on ``device``.

    Shape:
        images: (N, 3, H, W) float32 in [0, 1]; targets: (N,) int64.
        returns: (N, 3, H, W) float32 attributions.
    """
    out = np.zeros(images.shape, np.float32)
    for s in range(0, len(images), batch_size):
        x = torch.as_tensor(images[s : s + batch_size], device=device)
        t = torch.as_tensor(targets[s : s + batch_size], device=device)
        out[s : s + len(x)] = fn(model, x, t).cpu().numpy()
    return out


@dataclass(frozen=True)
class GradientExplainer:
    """A deterministic per-pixel attribution as an :class:`Explainer`.

    A subclass names itself, declares ``outputs = {name: ("image", "float32")}`` and
    sets ``attribution``; :meth:`explain` runs it over batches of ``batch_size``
    (:func:`batched_attribution`) and ignores ``where``.

    Args:
        batch_size: images per gradient call.
    """

    name: ClassVar[str]
    outputs: ClassVar[Mapping[str, tuple[ShapeKind, str]]]
    attribution: ClassVar[Attribution]
    batch_size: int = 64

    def explain(
        self,
        model: nn.Module,
        images: np.ndarray,
        targets: np.ndarray,
        *,
        device: torch.device,
        where: ExampleSlice,
    ) -> dict[str, np.ndarray]:
        """``{name: (N, C, H, W) float32}`` attributions; ``where`` is unused."""
        del where  # deterministic
        fn = self.bound_attribution()
        return {self.name: batched_attribution(fn, model, images, targets, self.batch_size, device)}

    def bound_attribution(self) -> Attribution:
        """The attribution :meth:`explain` calls; a subclass binds its own settings here."""
        return type(self).attribution


@dataclass(frozen=True)
class Example:
    """One image of a batch for :meth:`SeededExplainer.explain_example`.

    ``(seed, image_set, position)`` is where it sits (:class:`ExampleSlice`, position =
    ``start + i``): the key its random draws are seeded from.

    Shape:
        image: (3, H, W) float32 in [0, 1].
    """

    model: nn.Module
    image: np.ndarray
    target: int
    device: torch.device
    seed: int
    image_set: int
    position: int


class SeededExplainer:
    """A random explainer, run one image at a time with per-example seeds, as an :class:`Explainer`.

    A subclass declares ``name`` and ``outputs``, sets ``rank`` when an output is of
    kind "rank", ``progress`` to log per-image progress under that label, and
    implements :meth:`explain_example`; an example's result does not depend on the
    batch it comes in.
    """

    name: ClassVar[str]
    outputs: ClassVar[Mapping[str, tuple[ShapeKind, str]]]
    progress: ClassVar[str | None] = None

    @property
    def rank(self) -> int:
        """T, the per-image length of "rank" outputs."""
        raise NotImplementedError

    def explain_example(self, example: Example) -> dict[str, Any]:
        """One image's row of every output (arrays of the per-image shape, or scalars)."""
        raise NotImplementedError

    def explain(
        self,
        model: nn.Module,
        images: np.ndarray,
        targets: np.ndarray,
        *,
        device: torch.device,
        where: ExampleSlice,
    ) -> dict[str, np.ndarray]:
        """Each declared output, zero-filled, with row i set from :meth:`explain_example`."""
        n, _, h, w = images.shape
        shapes = {"image": images.shape[1:], "map": (h, w), "one": ()}
        out = {
            key: np.zeros((n, *(shapes[kind] if kind != "rank" else (self.rank,))), dtype)
            for key, (kind, dtype) in self.outputs.items()
        }
        rows: Iterable[int] = range(n)
        if self.progress is not None:
            rows = track(rows, total=n, desc=f"{where.desc}: {self.progress}", unit="image")
        for i in rows:
            example = Example(
                model,
                images[i],
                int(targets[i]),
                device,
                where.seed,
                where.image_set,
                where.start + i,
            )
            for key, value in self.explain_example(example).items():
                out[key][i] = value
        return out
