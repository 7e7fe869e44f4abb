"""IFGSM over an eps grid, untargeted and targeted (Gulshad et al. Sec. 3.1 Eq. 1, Sec. 4).

The attribute chain attacks one class-stratified test subset white-box against each
classifier (standard and adversarially trained), for every eps of the grid, in both
modes. Targeted attacks are the paper's "average case": one random target class other
than the true class per image, seeded, shared by every model and eps.

:class:`AttackPlan` selects the images and targets; :func:`attack_grid` is the
computation on tensors; :func:`attack_shard_setup` runs it on shards of the dataset
(:mod:`advinterp.shards`, the job of :meth:`AttackPlan.job`), :func:`attack_arrays`
creates the store arrays it fills (layout in :mod:`advinterp.data.adversarial`) and
:func:`attack_metrics` summarises them.

The adversarial images are stored losslessly relative to the clean images the store
also holds (:func:`clean_array`, filled by :func:`clean_shard_setup`), with the
predictions :func:`relative_to_clean` names (:class:`advinterp.store.Relative`): ~5x
smaller than float32, read back bitwise through :func:`advinterp.store.decoded`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch
import zarr
from torch import nn

from advinterp.attacks.ifgsm import default_step_size, ifgsm
from advinterp.data.adversarial import CLEAN, MODES, eps_key
from advinterp.data.artifact import open_dataset
from advinterp.data.batches import iter_batches
from advinterp.data.dataset import TEST, AttributeIndex, split_rows
from advinterp.models.checkpoint import load_classifier
from advinterp.models.predict import predict
from advinterp.shards import Compute, ShardJob
from advinterp.store import MAX_LEVELS, Relative, create_array, sample_chunk_size


def random_targets(labels: np.ndarray, num_classes: int, seed: int) -> np.ndarray:
    """One target per image, uniform over the classes other than its label (seeded).

    Shape:
        labels: (n,) int in [0, num_classes) -> (n,) int64, never equal to the label.
    """
    rng = np.random.default_rng([seed, 3])
    shift = rng.integers(1, num_classes, size=len(labels))
    return ((labels + shift) % num_classes).astype(np.int64)


def step_sizes(eps: Sequence[float], steps: int, step_size: float | None) -> dict[str, float]:
    """IFGSM's α per eps group (``eps_<eps>`` -> α): ``step_size``, or 2.5 eps / steps."""
    return {eps_key(e): step_size or default_step_size(e, steps) for e in eps}


def ifgsm_batches(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    targets: torch.Tensor | None,
    *,
    eps: float,
    steps: int,
    step_size: float,
    batch_size: int,
) -> torch.Tensor:
    """IFGSM (:func:`advinterp.attacks.ifgsm.ifgsm`) on ``x``, ``batch_size`` images at a time.

    Shape:
        x: (N, 3, H, W) float32 in [0, 1]; y, targets: (N,) int64.
        returns: (N, 3, H, W) float32 in [0, 1], ``|x̂ - x|_inf <= eps``.
    """
    out = []
    for s in range(0, len(x), batch_size):
        sl = slice(s, s + batch_size)
        out.append(
            ifgsm(
                model,
                x[sl],
                y[sl],
                eps=eps,
                steps=steps,
                step_size=step_size,
                targets=None if targets is None else targets[sl],
            )
        )
    return torch.cat(out)


def attack_grid(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    targets: torch.Tensor,
    *,
    eps: Sequence[float],
    steps: int,
    alphas: Mapping[str, float],
    batch_size: int,
) -> dict[str, np.ndarray]:
    """Every (mode, eps) attack of one model on one batch of images, with its outcome.

    Success is ``pred != y`` for the untargeted attack, ``pred == target`` for the
    targeted one. The budget is checked, not assumed.

    Args:
        alphas: α per eps group (:func:`step_sizes`).

    Shape:
        x: (n, 3, H, W) float32 in [0, 1] on the model's device; y, targets: (n,) int64.
        returns: ``clean_pred`` (n,) int64 and, per ``<mode>/eps_<eps>``, ``images``
        (n, 3, H, W) float32 in [0, 1], ``pred`` (n,) int64, ``success`` (n,) bool.

    Raises:
        RuntimeError: an adversarial image left the eps-ball or [0, 1] (a bug).
    """
    result = {"clean_pred": predict(model, x, batch_size).numpy()}
    y_cpu, t_cpu = y.cpu(), targets.cpu()
    for mode in MODES:
        for e in eps:
            x_adv = ifgsm_batches(
                model,
                x,
                y,
                targets if mode == "targeted" else None,
                eps=e,
                steps=steps,
                step_size=alphas[eps_key(e)],
                batch_size=batch_size,
            )
            excess = float((x_adv - x).abs().max()) - e
            if excess > 1e-6 or x_adv.min() < 0 or x_adv.max() > 1:
                raise RuntimeError(f"bug: IFGSM left the eps={e} ball or [0, 1]")
            pred = predict(model, x_adv, batch_size)
            hit = pred == t_cpu if mode == "targeted" else pred != y_cpu
            rel = f"{mode}/{eps_key(e)}"
            result[f"{rel}/images"] = x_adv.cpu().numpy()
            result[f"{rel}/pred"] = pred.numpy()
            result[f"{rel}/success"] = hit.numpy()
    return result


def clean_shard_setup(dataset: str, rows: np.ndarray) -> Compute:
    """Shard setup: ``compute(slice)`` reads the clean images of dataset rows ``rows[slice]``.

    Shape:
        returns ``{"clean": (n, 3, H, W) float32 in [0, 1]}`` per shard.
    """
    images = cast(zarr.Array, open_dataset(Path(dataset))["images"])
    ds_chunk = sample_chunk_size(images)

    def compute(sl: slice) -> dict[str, np.ndarray]:
        batches = iter_batches(images, rows[sl], len(rows[sl]), ds_chunk)
        return {CLEAN: np.concatenate([b for _, b in batches]).astype(np.float32, copy=False)}

    return compute


def attack_shard_setup(
    dataset: str,
    checkpoint: str,
    num_classes: int,
    rows: np.ndarray,
    labels: np.ndarray,
    targets: np.ndarray,
    eps: tuple[float, ...],
    steps: int,
    alphas: dict[str, float],
    batch_size: int,
    device: str,
) -> Compute:
    """Shard setup (:class:`advinterp.shards.ShardJob`): :func:`attack_grid` of one model.

    ``compute(slice)`` attacks the dataset rows ``rows[slice]`` (labels and targets
    alike); every process loads the checkpoint and opens the dataset once.
    """
    dev = torch.device(device)
    model = load_classifier(checkpoint, dev, num_classes=num_classes)
    images = cast(zarr.Array, open_dataset(Path(dataset))["images"])
    ds_chunk = sample_chunk_size(images)

    def compute(sl: slice) -> dict[str, np.ndarray]:
        batches = iter_batches(images, rows[sl], len(rows[sl]), ds_chunk)
        x = torch.as_tensor(np.concatenate([b for _, b in batches]), device=dev)
        y = torch.as_tensor(labels[sl], device=dev)
        t = torch.as_tensor(targets[sl], device=dev)
        return attack_grid(
            model, x, y, t, eps=eps, steps=steps, alphas=alphas, batch_size=batch_size
        )

    return compute


@dataclass(frozen=True)
class AttackPlan:
    """The images attacked, their targets and the attack's settings, shared by every model.

    Attributes:
        rows: dataset rows attacked, ascending; labels: their classes; targets: the
            targeted attack's class per image (:func:`random_targets`), all (n,) int64.
        alphas: IFGSM's α per eps group (:func:`step_sizes`).
    """

    rows: np.ndarray
    labels: np.ndarray
    targets: np.ndarray
    num_classes: int
    eps: tuple[float, ...]
    steps: int
    alphas: dict[str, float]
    batch_size: int

    @classmethod
    def select(
        cls,
        index: AttributeIndex,
        *,
        eps: tuple[float, ...],
        steps: int,
        step_size: float | None,
        max_images: int | None,
        batch_size: int,
        seed: int,
    ) -> AttackPlan:
        """The test split, or a class-stratified subset of about ``max_images`` of it
        (:func:`advinterp.data.dataset.split_rows`), with seeded random targets."""
        rows = split_rows(index, TEST, max_images, seed)
        labels = index.labels[rows].astype(np.int64)
        C = len(index.class_names)
        targets = random_targets(labels, C, seed)
        return cls(
            rows, labels, targets, C, eps, steps, step_sizes(eps, steps, step_size), batch_size
        )

    @property
    def n(self) -> int:
        return len(self.rows)

    def job(self, dataset: Path, checkpoint: Path | str, device: torch.device | str) -> ShardJob:
        """The shard job (:func:`attack_shard_setup`) attacking with one model's checkpoint."""
        return ShardJob.of(
            attack_shard_setup,
            str(Path(dataset).resolve()),
            str(Path(checkpoint).resolve()),
            self.num_classes,
            self.rows,
            self.labels,
            self.targets,
            self.eps,
            self.steps,
            self.alphas,
            self.batch_size,
            str(device),
        )


def relative_to_clean(eps: float, step_size: float) -> Relative:
    """How an IFGSM image of budget ``eps`` and step ``step_size`` (α) is stored relative to
    its clean image ``x`` (:class:`advinterp.store.Relative`).

    Each pixel is predicted as ``x + k·α`` (``|k·α| < eps``), ``x ± eps`` (the projection
    onto the ball) or, when ``eps`` is not a multiple of α, ``x ± (eps - j·α)`` (steps
    back from the ball's edge); where it was clipped at 0 or 1 and stepped back, as one of
    the constants 0, 1, ``k·α`` and ``1 - k·α`` (``k·α <= 2 eps``), as many as the 32
    codes leave room for. What the prediction misses (float rounding along the attack's
    path) is the stored residual; a pixel no prediction comes near is stored whole, so the
    round trip is lossless for any image. A step finer than eps / 14 has more multiples
    than codes: the innermost are left out, and pixels there are stored whole (~7 % of
    them at α = eps / 16, 40 steps).
    """
    a, e = np.float32(step_size), np.float32(eps)
    if not (a > 0 and e > 0):  # eps 0: the image is the clean one
        return Relative(CLEAN, (0.0,), (0.0, 1.0))
    reach = int(e / a) + 1
    offsets = [float(-e), float(e)]
    # Multiples of α first, nearest the edge first (where most pixels end), then the
    # steps back from the edge; a level within 1e-3 α of one already kept is the same.
    inner = sorted((k for k in range(-reach, reach + 1) if abs(k) * a < e * (1 - 1e-6)), key=abs)
    back = [s * (e - j * a) for j in range(1, 2 * reach) for s in (1, -1) if e - j * a > -e]
    for level in [float(np.float32(k) * a) for k in reversed(inner)] + [float(v) for v in back]:
        if len(offsets) < MAX_LEVELS - 4 and all(abs(level - o) > 1e-3 * a for o in offsets):
            offsets.append(level)
    constants = [0.0, 1.0]
    k = 1
    while len(offsets) + len(constants) + 2 <= MAX_LEVELS and k * a <= 2 * e:
        constants += [float(np.float32(k) * a), float(np.float32(1) - np.float32(k) * a)]
        k += 1
    return Relative(CLEAN, tuple(offsets), tuple(constants))


def clean_array(group: zarr.Group, n: int, image_size: int, chunk: int) -> zarr.Array:
    """Create (or reopen) the attack store's top-level clean images, the reference of
    every adversarial image array (fill it before those: :func:`clean_shard_setup`)."""
    return create_array(
        group,
        CLEAN,
        (n, 3, image_size, image_size),
        "float32",
        dims=("sample", "channel", "y", "x"),
        chunk_size=chunk,
        attrs={"range": [0.0, 1.0], "units": "RGB intensity", "source": "dataset images[rows]"},
    )


def attack_arrays(
    group: zarr.Group,
    n: int,
    image_size: int,
    eps: Sequence[float],
    alphas: Mapping[str, float],
    chunk: int,
) -> dict[str, zarr.Array]:
    """Create (or reopen, when resuming) one model's arrays of the attack store.

    ``group`` is the model's group; the names are those :func:`attack_grid` returns.
    The images are stored relative to the store's clean images (:func:`clean_array`,
    which must exist): read them with :func:`advinterp.store.decoded`.
    """
    sample = ("sample",)
    outputs = {
        "clean_pred": create_array(
            group, "clean_pred", (n,), "int64", dims=sample, chunk_size=chunk
        )
    }
    for mode, e in ((mode, e) for mode in MODES for e in eps):
        rel = f"{mode}/{eps_key(e)}"
        sub = group.require_group(rel)
        sub.attrs.update({"eps": e, "mode": mode, "step_size": alphas[eps_key(e)]})
        outputs[f"{rel}/images"] = create_array(
            sub,
            "images",
            (n, 3, image_size, image_size),
            "float32",
            dims=("sample", "channel", "y", "x"),
            chunk_size=chunk,
            attrs={"range": [0.0, 1.0], "units": "RGB intensity", "linf_budget": e},
            relative=relative_to_clean(e, alphas[eps_key(e)]),
        )
        outputs[f"{rel}/pred"] = create_array(
            sub, "pred", (n,), "int64", dims=sample, chunk_size=chunk
        )
        outputs[f"{rel}/success"] = create_array(
            sub, "success", (n,), "bool", dims=sample, chunk_size=chunk
        )
    return outputs


def attack_metrics(
    outputs: Mapping[str, Any], labels: np.ndarray, eps: Sequence[float]
) -> dict[str, Any]:
    """Clean accuracy, then success rate and accuracy per mode and eps group.

    Args:
        outputs: the arrays of :func:`attack_arrays` (or :func:`attack_grid`'s result).

    Shape:
        labels: (n,) int64, the attacked images' true classes.
    """
    metrics: dict[str, Any] = {
        "clean_accuracy": float(np.mean(outputs["clean_pred"][:] == labels)),
        **{mode: {} for mode in MODES},
    }
    for mode in MODES:
        for e in eps:
            rel = f"{mode}/{eps_key(e)}"
            metrics[mode][eps_key(e)] = {
                "success_rate": float(np.mean(outputs[f"{rel}/success"][:])),
                "accuracy": float(np.mean(outputs[f"{rel}/pred"][:] == labels)),
            }
    return metrics
