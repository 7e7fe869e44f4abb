"""Supervised training of an :class:`ImageClassifier` from streamed batches."""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterable
from typing import Any, Protocol

import numpy as np
import torch
import torch.nn.functional as F

from advinterp.config.core import OptimizerParams
from advinterp.data.batches import SplitBatches
from advinterp.data.dataset import TEST, VAL
from advinterp.errors import ParamError
from advinterp.models.classifier import ImageClassifier
from advinterp.progress import track
from advinterp.store import sample_chunk_size

log = logging.getLogger(__name__)

Batches = Iterable[tuple[np.ndarray, np.ndarray]]
SHUFFLE_BUFFER = 8192
"""Samples held by the streaming shuffle of a training epoch (:func:`iter_shuffled_batches`)."""
LossFn = Callable[[ImageClassifier, torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]
"""``(model, x, y) -> (loss, logits)``: a training loss in place of cross-entropy."""


class TrainingDivergedError(ParamError):
    """The loss or the weights became NaN or infinite (a learning rate too high, say):
    training stops there, so no checkpoint of a diverged model is ever written."""


def _non_finite(model: torch.nn.Module) -> str | None:
    """The name of the first parameter or float buffer holding NaN or inf, else None."""
    tensors = [*model.named_parameters(), *model.named_buffers()]
    for name, t in tensors:
        if t.is_floating_point() and not bool(torch.isfinite(t).all()):
            return name
    return None


def augment_batch(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Random horizontal flip and a translation of up to 1/16 of the side (reflect pad).

    Shape:
        x: (N, 3, H, W) in [0, 1] -> same shape and range.
    """
    n, _, h, w = x.shape
    flip = torch.rand(n, generator=generator) < 0.5
    x = torch.where(flip.view(-1, 1, 1, 1).to(x.device), x.flip(-1), x)
    pad = max(1, h // 16)
    padded = F.pad(x, (pad, pad, pad, pad), mode="reflect")
    dy, dx = torch.randint(0, 2 * pad + 1, (2,), generator=generator).tolist()
    return padded[:, :, dy : dy + h, dx : dx + w]


def make_optimizer(
    model: torch.nn.Module, name: str, lr: float, momentum: float, weight_decay: float
) -> torch.optim.Optimizer:
    """SGD with Nesterov momentum or Adam(W), over trainable parameters only."""
    params = [p for p in model.parameters() if p.requires_grad]
    if name == "sgd":
        return torch.optim.SGD(
            params, lr=lr, momentum=momentum, weight_decay=weight_decay, nesterov=momentum > 0
        )
    return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)


def cosine_lr(
    optimizer: torch.optim.Optimizer,
    base_lrs: list[float],
    step: int,
    total_steps: int,
    warmup_steps: int = 0,
) -> None:
    """Set each param group's learning rate for ``step`` (0-based) of ``total_steps``.

    ``lr = base * (step + 1) / W`` for the first ``W = warmup_steps`` steps, then the
    cosine decay ``lr = base * 0.5 * (1 + cos(pi * (step - W) / max(1, total_steps - W)))``.
    """
    if step < warmup_steps:
        factor = (step + 1) / warmup_steps
    else:
        # pi * step first, then the division: the order the old loops rounded in
        angle = math.pi * (step - warmup_steps) / max(1, total_steps - warmup_steps)
        factor = 0.5 * (1 + math.cos(angle))
    for g, base in zip(optimizer.param_groups, base_lrs, strict=True):
        g["lr"] = base * factor


@torch.no_grad()
def accuracy(model: ImageClassifier, batches: Batches, device: torch.device) -> float:
    """Top-1 accuracy of ``model`` over (images, labels) batches, in eval mode."""
    was_training = model.training
    model.eval()
    try:
        correct = total = 0
        for x, y in batches:
            logits = model(torch.as_tensor(x, device=device))
            correct += int((logits.argmax(1).cpu() == torch.as_tensor(y)).sum())
            total += len(y)
    finally:
        model.train(was_training)
    return correct / max(total, 1)


def fit(
    model: ImageClassifier,
    train_batches: Callable[[int], Batches],
    val_batches: Callable[[], Batches],
    *,
    epochs: int,
    steps_per_epoch: int,
    optimizer: torch.optim.Optimizer,
    device: torch.device,
    generator: torch.Generator,
    augment: bool = True,
    label_smoothing: float = 0.0,
    loss_fn: LossFn | None = None,
) -> list[dict[str, float]]:
    """Train with a cosine learning-rate schedule; evaluate on val after each epoch.

    Args:
        train_batches: ``epoch -> iterable of (images (B,3,H,W) [0,1], labels (B,))``.
        val_batches: a fresh iterable of validation batches per call.
        loss_fn: ``(model, x, y) -> (loss, logits)`` replacing cross-entropy
            (adversarial training passes its Eq. 2 here); logits feed train accuracy.

    Returns:
        One record per epoch: loss, train accuracy, val accuracy, learning rate.

    Raises:
        TrainingDivergedError: a batch's loss is NaN or inf, or a weight is after an
            epoch (checked before the step that would spread it, and before val).
    """
    base_lrs = [g["lr"] for g in optimizer.param_groups]
    total_steps = max(1, epochs * steps_per_epoch)
    step = 0
    history = []
    for epoch in range(epochs):
        model.train()
        loss_sum = correct = seen = 0.0
        batches = track(
            train_batches(epoch),
            total=steps_per_epoch,
            desc=f"epoch {epoch + 1}/{epochs}",
            unit="batch",
        )
        for xb, yb in batches:
            cosine_lr(optimizer, base_lrs, step, total_steps)
            x = torch.as_tensor(xb, device=device)
            y = torch.as_tensor(yb, device=device)
            if augment:
                x = augment_batch(x, generator)
            if loss_fn is None:
                logits = model(x)
                loss = F.cross_entropy(logits, y, label_smoothing=label_smoothing)
            else:
                loss, logits = loss_fn(model, x, y)
            value = loss.item()
            if not math.isfinite(value):
                raise TrainingDivergedError(
                    f"training diverged: the loss is {value} at epoch {epoch + 1}/{epochs}, "
                    f"step {step + 1} of {total_steps} (learning rate now "
                    f"{optimizer.param_groups[0]['lr']:g})"
                )
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            step += 1
            loss_sum += value * len(y)
            correct += float((logits.argmax(1) == y).sum())
            seen += len(y)
        bad = _non_finite(model)
        if bad is not None:
            raise TrainingDivergedError(
                f"training diverged: weight '{bad}' is NaN or inf after epoch "
                f"{epoch + 1}/{epochs} (learning rate now {optimizer.param_groups[0]['lr']:g})"
            )
        record = {
            "epoch": epoch + 1,
            "loss": loss_sum / max(seen, 1),
            "train_accuracy": correct / max(seen, 1),
            "val_accuracy": accuracy(model, val_batches(), device),
            "lr": optimizer.param_groups[0]["lr"],
        }
        log.info(
            "epoch %d/%d: loss %.4f, train acc %.3f, val acc %.3f",
            epoch + 1,
            epochs,
            record["loss"],
            record["train_accuracy"],
            record["val_accuracy"],
        )
        history.append(record)
    model.eval()
    return history


def fit_split(
    model: torch.nn.Module,
    data: SplitBatches,
    *,
    epochs: int,
    optimizer: torch.optim.Optimizer,
    device: torch.device,
    seed: int,
    augment: bool = True,
    label_smoothing: float = 0.0,
    loss_fn: LossFn | None = None,
) -> list[dict[str, float]]:
    """:func:`fit` on ``data``'s train split, watched on its val split (test if val is empty).

    ``seed`` drives both the epoch shuffles (numpy) and the augmentation (torch), so
    one integer reproduces the run.
    """
    rng = np.random.default_rng(seed)
    return fit(
        model,  # type: ignore[arg-type]  # fit only calls model(x), train() and eval()
        lambda epoch: data.shuffled(rng, SHUFFLE_BUFFER),
        lambda: data.ordered(data.monitor),
        epochs=epochs,
        steps_per_epoch=data.steps_per_epoch,
        optimizer=optimizer,
        device=device,
        generator=torch.Generator().manual_seed(seed),
        augment=augment,
        label_smoothing=label_smoothing,
        loss_fn=loss_fn,
    )


class TrainingSchedule(Protocol):
    """A config section's training schedule (``cfg.epochs``, ``cfg.batch_size``, ``cfg.optimizer``)."""

    @property
    def epochs(self) -> int: ...
    @property
    def batch_size(self) -> int: ...
    @property
    def optimizer(self) -> OptimizerParams: ...


def fit_on_split(
    model: torch.nn.Module,
    array: Any,
    labels: np.ndarray,
    split: np.ndarray,
    schedule: TrainingSchedule,
    *,
    device: torch.device,
    seed: int,
    augment: bool = True,
    label_smoothing: float = 0.0,
) -> tuple[SplitBatches, list[dict[str, float]]]:
    """:func:`fit_split` of ``model`` on ``array``'s train split, read shard by shard.

    Batches of ``schedule.batch_size`` for ``schedule.epochs`` epochs, with
    :func:`make_optimizer` of ``schedule.optimizer``. Returns the batches (for
    :func:`split_metrics`) and the per-epoch history.

    Raises:
        TrainingDivergedError: naming the schedule's dotted optimizer params (under its
            params section, e.g. ``train.optimizer.lr``) and where the loss diverged.

    Shape:
        array: (N, ...) one sample per dataset row (a zarr array); labels: (N,) int64;
        split: (N,) int8 codes TRAIN/VAL/TEST.
    """
    data = SplitBatches(array, labels, split, schedule.batch_size, sample_chunk_size(array))
    opt = schedule.optimizer
    try:
        history = fit_split(
            model,
            data,
            epochs=schedule.epochs,
            optimizer=make_optimizer(model, **opt.model_dump()),
            device=device,
            seed=seed,
            augment=augment,
            label_smoothing=label_smoothing,
        )
    except TrainingDivergedError as err:
        section = getattr(schedule, "section", None)
        at = f"{section}." if section else ""
        raise TrainingDivergedError(
            f"{at}optimizer.lr={opt.lr:g} ({at}optimizer.name={opt.name}, "
            f"{at}optimizer.momentum={opt.momentum:g}, {at}batch_size={schedule.batch_size}): "
            f"{err}; lower the learning rate"
        ) from None
    return data, history


def split_metrics(
    model: torch.nn.Module,
    data: SplitBatches,
    history: list[dict[str, float]],
    device: torch.device,
) -> dict[str, float | None]:
    """Final train accuracy (from ``history``), val accuracy (None without a val split), test accuracy."""
    net: ImageClassifier = model  # type: ignore[assignment]  # accuracy only calls model(x)
    return {
        "train_accuracy": history[-1]["train_accuracy"] if history else None,
        "val_accuracy": accuracy(net, data.ordered(VAL), device) if len(data.rows[VAL]) else None,
        "test_accuracy": accuracy(net, data.ordered(TEST), device),
    }
