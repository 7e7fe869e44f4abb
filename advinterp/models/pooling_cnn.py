"""The small pooling CNN of Zheng et al. (InterpretGAN paper, Sec. 4-5, Fig. 6).

The paper diagnoses "a widely used model architecture in adversarial training
research" for MNIST (Madry et al., TRADES' SmallCNN): four 3x3 convolutions, a 2x2
pooling after the second and the fourth, then three fully connected layers::

    conv1 -> conv2 -> pool -> conv3 -> conv4 -> pool -> fc1 -> fc2 -> fc3 (logits)

The interpreted layers are the seven outputs named as in Table 1: ``conv1``,
``conv2`` (after its pooling), ``conv3``, ``conv4`` (after its pooling), ``fc1``,
``fc2`` and ``fc3``. ``pooling`` ("max" or "avg") is the only difference between the
two variants of Tables 2-3.

Pixel-space contract: the model is an :class:`ImageClassifier` (normalisation
inside, input in [0, 1]); ``body`` ends at ``fc2`` (so ``features(x)`` is the
penultimate layer) and ``head`` is ``fc3``. For speed on CPU the body first
average-pools the input to ``input_size`` (64 -> 32 px on the embedded default, an
exact 2x2 mean); attacks and explanations still live in the data's full resolution.
ReLUs are out-of-place, so hooks and guided backprop see untouched tensors.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any, Literal, cast

import numpy as np
import torch
from torch import nn

from advinterp.config.igan_train import IganTrainConfig, PoolingCnnParams
from advinterp.data.batches import iter_batches, iter_shuffled_batches
from advinterp.data.dataset import TRAIN, VAL
from advinterp.errors import CheckpointError
from advinterp.models.adversarial_training import adversarial_loss
from advinterp.models.classifier import ImageClassifier
from advinterp.models.training import fit, make_optimizer

ARCH = "pooling_cnn"
Pooling = Literal["max", "avg"]
LAYERS: tuple[str, ...] = ("conv1", "conv2", "conv3", "conv4", "fc1", "fc2", "fc3")
POOLED: tuple[str, ...] = ("conv2", "conv4")
SHUFFLE_BUFFER = 4096


def _pool(kind: Pooling) -> nn.Module:
    if kind == "max":
        return nn.MaxPool2d(2, 2)
    if kind == "avg":
        return nn.AvgPool2d(2, 2)
    raise ValueError(f"pooling must be 'max' or 'avg', got {kind!r}")


class PoolingCNNBody(nn.Module):
    """conv1..conv4 (pooling after conv2 and conv4), fc1, fc2; ``stages`` in order.

    Each conv is 3x3 (padding 1), optionally followed by batch norm, then ReLU. The
    paper's SmallCNN has no batch norm; with it, the embedded default reaches its
    accuracy in a few epochs (0.36 -> 0.67 val accuracy after 10 epochs here).

    Shape:
        input: (N, in_channels, H, W) normalised images; output: (N, fc_width) fc2
        activations.
    """

    def __init__(
        self,
        pooling: Pooling = "max",
        widths: Sequence[int] = (8, 16),
        fc_width: int = 64,
        input_size: int = 32,
        batch_norm: bool = True,
        in_channels: int = 3,
    ):
        super().__init__()
        if len(widths) != 2 or min(widths) < 1 or fc_width < 1 or input_size < 4:
            raise ValueError("widths: two positive ints; fc_width >= 1; input_size >= 4")
        w1, w2 = widths
        self.input_size = input_size
        self.resize = nn.AdaptiveAvgPool2d(input_size)
        side = input_size // 4

        def conv(c_in: int, c_out: int) -> list[nn.Module]:
            bn = [nn.BatchNorm2d(c_out)] if batch_norm else []
            return [nn.Conv2d(c_in, c_out, 3, padding=1, bias=not batch_norm), *bn, nn.ReLU()]

        self.stages = nn.ModuleDict(
            {
                "conv1": nn.Sequential(*conv(in_channels, w1)),
                "conv2": nn.Sequential(*conv(w1, w1), _pool(pooling)),
                "conv3": nn.Sequential(*conv(w1, w2)),
                "conv4": nn.Sequential(*conv(w2, w2), _pool(pooling)),
                "fc1": nn.Sequential(
                    nn.Flatten(), nn.Linear(w2 * side * side, fc_width), nn.ReLU()
                ),
                "fc2": nn.Sequential(nn.Linear(fc_width, fc_width), nn.ReLU()),
            }
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.resize(x)
        for stage in self.stages.values():
            h = stage(h)
        return h


def build_pooling_cnn(
    pooling: Pooling,
    num_classes: int,
    mean: Sequence[float],
    std: Sequence[float],
    *,
    widths: Sequence[int] = (8, 16),
    fc_width: int = 64,
    input_size: int = 32,
    batch_norm: bool = True,
) -> ImageClassifier:
    """An untrained pooling CNN wrapped as an :class:`ImageClassifier` (head = fc3).

    It reads ``len(mean)`` input channels (one normalisation value per channel). Two
    calls with the same arguments and seed but different ``pooling`` give models with
    identical parameters: only the two pooling modules differ.
    """
    if len(mean) != len(std) or not len(mean):
        raise ValueError(f"mean and std need one value per channel, got {len(mean)} and {len(std)}")
    body = PoolingCNNBody(pooling, widths, fc_width, input_size, batch_norm, len(mean))
    model = ImageClassifier(ARCH, body, nn.Linear(fc_width, num_classes), mean, std)
    model.architecture = {  # type: ignore[assignment]
        "pooling": pooling,
        "widths": [int(w) for w in widths],
        "fc_width": int(fc_width),
        "input_size": int(input_size),
        "batch_norm": bool(batch_norm),
    }
    return model


def architecture_of(model: ImageClassifier) -> dict[str, Any]:
    """The keyword arguments that rebuild ``model`` (store them with its checkpoint)."""
    arch = getattr(model, "architecture", None)
    if model.arch != ARCH or arch is None:
        raise ValueError(f"not a pooling CNN: arch {model.arch!r}")
    return dict(arch)


def pooling_cnn_from_checkpoint(obj: dict[str, Any], origin: str) -> ImageClassifier:
    """Rebuild a pooling CNN from a checkpoint dict written by ``save_classifier``.

    The stage saves with ``save_classifier(path, model, architecture=architecture_of(model))``
    and reads the dict back with ``read_weights_file`` (weights_only loading).

    Raises:
        CheckpointError: naming ``origin``, when the dict is not a pooling CNN or its
            weights do not fit the recorded architecture.
    """
    if obj.get("arch") != ARCH:
        raise CheckpointError(f"{origin}: a {obj.get('arch')!r} checkpoint, not a {ARCH}")
    arch = (obj.get("metadata") or {}).get("architecture")
    if not isinstance(arch, dict):
        raise CheckpointError(f"{origin}: the checkpoint does not record its architecture")
    try:
        model = build_pooling_cnn(
            arch["pooling"],
            int(obj["num_classes"]),
            obj["mean"],
            obj["std"],
            widths=arch["widths"],
            fc_width=arch["fc_width"],
            input_size=arch["input_size"],
            batch_norm=arch["batch_norm"],
        )
        model.load_state_dict(obj["state_dict"], strict=True)
    except (KeyError, ValueError, RuntimeError) as err:
        first = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise CheckpointError(f"{origin}: not a loadable {ARCH}: {first}") from None
    return model.eval()


def _body(model: ImageClassifier) -> PoolingCNNBody:
    return cast(PoolingCNNBody, model.body)


def _normalised(model: ImageClassifier, x: torch.Tensor) -> torch.Tensor:
    return _body(model).resize((x - model.mean) / model.std)


def layer_outputs(
    model: ImageClassifier, x: torch.Tensor, upto: str | None = None
) -> dict[str, torch.Tensor]:
    """Outputs l = f_pre(x) of every interpreted layer (``LAYERS``), in order.

    Args:
        upto: stop after this layer (saves the rest of the forward pass).

    Shape:
        x: (N, C_in, H, W) float32 in [0, 1].
        returns: layer -> (N, C, h, w) for conv layers, (N, D) for fc layers
        (``fc3`` is the logits).
    """
    if upto is not None and upto not in LAYERS:
        raise ValueError(f"unknown layer {upto!r}; layers are {LAYERS}")
    out: dict[str, torch.Tensor] = {}
    h = _normalised(model, x)
    for name, stage in _body(model).stages.items():
        h = stage(h)
        out[name] = h
        if name == upto:
            return out
    out["fc3"] = model.head(h)
    return out


def pool_inputs(model: ImageClassifier, x: torch.Tensor) -> dict[str, torch.Tensor]:
    """The activations entering each pooling layer (outputs of conv2's and conv4's ReLU).

    Shape:
        x: (N, C_in, H, W) float32 in [0, 1]; returns ``POOLED`` name -> (N, C, h, w).
    """
    out: dict[str, torch.Tensor] = {}
    h = _normalised(model, x)
    for name, stage in _body(model).stages.items():
        if name in POOLED:
            conv, pool = cast(nn.Sequential, stage)[:-1], cast(nn.Sequential, stage)[-1]
            pre = conv(h)
            out[name] = pre
            h = pool(pre)
        else:
            h = stage(h)
        if name == POOLED[-1]:
            break
    return out


def latent_fn(model: ImageClassifier) -> Callable[[torch.Tensor], dict[str, torch.Tensor]]:
    """``x -> {layer: f_pre(x) for every layer, "logits": f(x)}`` (what InterpretGAN reads)."""

    def latents(x: torch.Tensor) -> dict[str, torch.Tensor]:
        out = layer_outputs(model, x)
        out["logits"] = out["fc3"]
        return out

    return latents


def channel_stats(
    images: Any, rows: np.ndarray, chunk_size: int
) -> tuple[list[float], list[float]]:
    """Per-channel mean and std of ``images[rows]`` (the model's normalisation).

    Shape:
        images: (N, C, H, W) float32 in [0, 1], any array indexable by slices;
        returns two lists of C floats.
    """
    total = np.zeros(images.shape[1])
    sq = np.zeros(images.shape[1])
    count = 0
    for _, x in iter_batches(images, rows, 256, chunk_size):
        x = x.astype(np.float64)
        total += x.sum(axis=(0, 2, 3))
        sq += (x**2).sum(axis=(0, 2, 3))
        count += x.shape[0] * x.shape[2] * x.shape[3]
    if count == 0:
        raise ValueError("no images to compute the normalisation from")
    mean = total / count
    std = np.sqrt(np.maximum(sq / count - mean**2, 1e-12))
    return mean.tolist(), np.maximum(std, 1e-3).tolist()


def train_pooling_cnn(
    pooling: Pooling,
    num_classes: int,
    architecture: dict[str, Any],
    images: Any,
    labels: np.ndarray,
    train_rows: np.ndarray,
    val_rows: np.ndarray,
    *,
    mean: Sequence[float],
    std: Sequence[float],
    epochs: int,
    batch_size: int,
    lr: float,
    momentum: float,
    weight_decay: float,
    augment: bool,
    chunk_size: int,
    seed: int,
    device: torch.device,
    adversarial: dict[str, Any] | None = None,
) -> tuple[ImageClassifier, list[dict[str, float]]]:
    """Build and train a pooling CNN, naturally or with Eq. 2 PGD adversarial training.

    Everything random (initial weights, batch order, augmentation, PGD starts) is
    seeded from ``seed`` alone, so two calls that differ only in ``pooling`` train
    twins: same initial weights, same batches, same attacks' random starts.

    Args:
        architecture: ``widths``, ``fc_width``, ``input_size``, ``batch_norm``.
        labels: (N,) int64 labels of all rows of ``images``.
        adversarial: ``eps``, ``alpha``, ``steps``, ``step_size`` of
            :func:`advinterp.models.adversarial_training.adversarial_loss`; None trains
            naturally.

    Returns:
        The model in eval mode and one record per epoch (see ``fit``).
    """
    torch.manual_seed(seed)
    model = build_pooling_cnn(pooling, num_classes, mean, std, **architecture)
    model.to(device)
    rng = np.random.default_rng(seed)
    y_all = torch.as_tensor(labels)

    def with_labels(batches):
        for idx, x in batches:
            yield x, y_all[idx]

    def train_batches(epoch: int):
        del epoch
        buffer = min(max(len(train_rows), 1), SHUFFLE_BUFFER)
        return with_labels(
            iter_shuffled_batches(images, train_rows, batch_size, chunk_size, buffer, rng)
        )

    eval_rows = val_rows if len(val_rows) else train_rows
    loss_fn = None
    if adversarial is not None:
        loss_fn = adversarial_loss(**adversarial, generator=torch.Generator().manual_seed(seed + 1))
    history = fit(
        model,
        train_batches,
        lambda: with_labels(iter_batches(images, eval_rows, batch_size, chunk_size)),
        epochs=epochs,
        steps_per_epoch=math.ceil(len(train_rows) / batch_size),
        optimizer=make_optimizer(model, "sgd", lr, momentum, weight_decay),
        device=device,
        generator=torch.Generator().manual_seed(seed),
        augment=augment,
        loss_fn=loss_fn,
    )
    return model.eval(), history


def recipe_architecture(params: PoolingCnnParams) -> dict[str, Any]:
    """The architecture ``igan_train.classifier`` asks for, as :func:`architecture_of`
    reports it (pooling included): compare a checkpoint with the recipe."""
    return {
        "pooling": params.pooling,
        "widths": [int(w) for w in params.widths],
        "fc_width": params.fc_width,
        "input_size": params.input_size,
        "batch_norm": params.batch_norm,
    }


def train_classifier(
    cfg: IganTrainConfig,
    pooling: Pooling,
    architecture: dict[str, Any],
    images: Any,
    labels: np.ndarray,
    split: np.ndarray,
    num_classes: int,
    *,
    mean: Sequence[float],
    std: Sequence[float],
    chunk_size: int,
    robust: bool,
    seed: int,
    device: torch.device,
) -> tuple[ImageClassifier, list[dict[str, float]]]:
    """A pooling CNN trained on the train split by the ``igan_train.classifier`` recipe:
    naturally, or (``robust``) with ``igan_train.adversarial``'s PGD training (Eq. 2).

    ``igan_train`` trains its natural and robust model and ``pooling_study`` the robust
    model's twin through here, so every arm shares one recipe; it is watched on the val
    split (the train split when val is empty).

    Args:
        architecture: ``widths``, ``fc_width``, ``input_size``, ``batch_norm``.
        labels, split: (N,) int64 labels and int8 TRAIN/VAL/TEST codes of ``images``' rows.

    Shape:
        images: (N, C, H, W) float32 in [0, 1], read ``chunk_size`` rows per shard.
    """
    c = cfg.classifier
    return train_pooling_cnn(
        pooling,
        num_classes,
        architecture,
        images,
        labels,
        np.flatnonzero(split == TRAIN),
        np.flatnonzero(split == VAL),
        mean=mean,
        std=std,
        epochs=c.epochs,
        batch_size=c.batch_size,
        lr=c.optimizer.lr,
        momentum=c.optimizer.momentum,
        weight_decay=c.optimizer.weight_decay,
        augment=c.augment,
        chunk_size=chunk_size,
        seed=seed,
        device=device,
        adversarial=cfg.adversarial.model_dump() if robust else None,
    )
