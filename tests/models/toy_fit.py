"""Training loops the tests share: a toy model fitted on in-memory arrays, and the
former inline "seeded shuffle + fit" that the library's split trainers must equal bitwise.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np
import torch

from advinterp.data.batches import SplitBatches
from advinterp.models.adversarial_training import LossFn
from advinterp.models.training import SHUFFLE_BUFFER, TrainingSchedule, fit, make_optimizer

CPU = torch.device("cpu")
Order = Callable[[int], Sequence[int] | np.ndarray | torch.Tensor]


def numpy_order(rows: int | np.ndarray, seed: int | None = None) -> Order:
    """``epoch -> rows`` permuted by ``default_rng(epoch)`` (or ``default_rng([seed, epoch])``).

    A fresh generator per epoch, so the order is a pure function of the epoch.
    """
    return lambda epoch: np.random.default_rng(
        epoch if seed is None else [seed, epoch]
    ).permutation(rows)


def fit_in_memory(
    model: torch.nn.Module,
    x: np.ndarray | torch.Tensor,
    y: np.ndarray | torch.Tensor,
    val: Iterable[tuple[Any, Any]],
    order: Order,
    *,
    epochs: int,
    optimizer: torch.optim.Optimizer,
    batch_size: int = 32,
    seed: int = 0,
    augment: bool = True,
    loss_fn: LossFn | None = None,
) -> list[dict[str, float]]:
    """``fit`` on images ``x`` (N, 3, H, W) in [0, 1] and labels ``y`` (N,) held in memory.

    Each epoch visits the rows ``order(epoch)`` (a pure function of the epoch) in batches
    of ``batch_size``; ``val`` (a list of (images, labels) batches) is the monitor set and
    ``torch.Generator().manual_seed(seed)`` drives augmentation. Returns fit's history.
    """

    def batches(epoch: int):
        rows = order(epoch)
        for s in range(0, len(rows), batch_size):
            idx = rows[s : s + batch_size]
            yield x[idx], torch.as_tensor(y[idx])

    return fit(
        model,
        batches,
        lambda: val,
        epochs=epochs,
        steps_per_epoch=-(-len(order(0)) // batch_size),
        optimizer=optimizer,
        device=CPU,
        generator=torch.Generator().manual_seed(seed),
        augment=augment,
        loss_fn=loss_fn,
    )


def former_fit_split(
    model: torch.nn.Module,
    data: SplitBatches,
    schedule: TrainingSchedule,
    *,
    seed: int,
    augment: bool = True,
) -> list[dict[str, float]]:
    """The stages' former inline training, kept as the reference the library must equal:
    numpy shuffles (through a ``SHUFFLE_BUFFER`` buffer) and torch augmentation both
    seeded by ``seed``; ``schedule``'s epochs and optimizer; monitored in order.
    """
    rng = np.random.default_rng(seed)
    return fit(
        model,
        lambda epoch: data.shuffled(rng, SHUFFLE_BUFFER),
        lambda: data.ordered(data.monitor),
        epochs=schedule.epochs,
        steps_per_epoch=data.steps_per_epoch,
        optimizer=make_optimizer(model, **schedule.optimizer.model_dump()),
        device=CPU,
        generator=torch.Generator().manual_seed(seed),
        augment=augment,
    )
