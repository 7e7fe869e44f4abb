"""bf16 against fp32 for the features pass: top-1 agreement and speed (CPU and GPU rows).

The pass is :func:`~advinterp.models.features.features_and_logits`, as the ``features``
and ``adv_features`` stages run it with ``base.precision``. Agreement needs a classifier
whose top-1 margins look like a trained one's: a body at random init predicts one or two
classes for everything, and bf16 could not flip those. :func:`fitted_classifier` fits the
head (L-BFGS on the body's fp32 features) to the embedded dataset's labels instead of
training the whole network, and agreement is measured on images the head was not fitted on.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F

from advinterp.config.dataset import SyntheticConfig
from advinterp.data.synthetic import generate
from advinterp.models.classifier import ImageClassifier, build_classifier
from advinterp.models.features import features_and_logits
from advinterp.runtime import Precision, autocast, channels_last
from bench.rows import Row, interleaved_best, throughput_row

MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def synced(fn: Callable[[], object], device: torch.device) -> Callable[[], None]:
    """``fn`` that returns only when the device has finished its work (CUDA is async)."""

    def run() -> None:
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    return run


def birds(size: int, per_class: int, num_classes: int = 20) -> tuple[np.ndarray, np.ndarray]:
    """Images and labels of the embedded dataset's generator (seed 0) at ``size`` px.

    Shape:
        returns: images (N, 3, size, size) float32 in [0, 1], labels (N,) int64.
    """
    cfg = SyntheticConfig(
        num_classes=num_classes, images_per_class=per_class, families=min(5, num_classes)
    )
    ds = generate(cfg, size, seed=0)
    n = len(ds.index.labels)
    return ds.load(range(n)), np.asarray(ds.index.labels, np.int64)


def fitted_classifier(
    arch: str,
    images: np.ndarray,
    labels: np.ndarray,
    num_classes: int,
    device: torch.device,
    batch_size: int = 128,
) -> ImageClassifier:
    """``arch`` at random init (seed 0) whose linear head is fitted to ``labels``.

    Shape:
        images: (N, 3, H, W) float32 in [0, 1]; labels: (N,) int64 in [0, num_classes).
    """
    torch.manual_seed(0)
    model = build_classifier(arch, num_classes, MEAN, STD).to(device).eval()
    feats, _ = features_and_logits(model, images, batch_size, device)
    f = torch.as_tensor(feats, device=device)
    f = f / f.norm(dim=1, keepdim=True).mean()  # a well-scaled problem for L-BFGS
    y = torch.as_tensor(labels, device=device)
    head = torch.nn.Linear(f.shape[1], num_classes).to(device)
    opt = torch.optim.LBFGS(head.parameters(), lr=1.0, max_iter=200, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = F.cross_entropy(head(f), y) + 1e-3 * head.weight.square().sum()
        loss.backward()
        return loss

    with torch.enable_grad():
        opt.step(closure)
    scale = torch.as_tensor(feats, device=device).norm(dim=1).mean()
    with torch.no_grad():  # fold the feature scaling into the head's weights
        model.head.weight.copy_(head.weight / scale)
        model.head.bias.copy_(head.bias)
    return model


def bare_forward(
    model: ImageClassifier,
    x: torch.Tensor,
    batch: int,
    device: torch.device,
    precision: Precision,
    nhwc: bool,
) -> None:
    """The bare forwards of ``x`` (already on the device) at ``precision``, NCHW or NHWC."""
    with torch.no_grad(), autocast(device, precision), channels_last(model, nhwc):
        for s in range(0, len(x), batch):
            model.head(model.features(x[s : s + batch]))


def bf16_rows(
    label: str,
    model: ImageClassifier,
    images: np.ndarray,
    batch: int,
    device: torch.device,
    *,
    note: str,
    labels: np.ndarray | None = None,
    target: float | None = None,
    repeat: int = 3,
) -> list[Row]:
    """Top-1 agreement of bf16 with fp32 and the speed of each (the features pass).

    Returns two rows: agreement (ours = images with the same top-1, theirs = all; judged
    against ``target``, or reported), and features_and_logits' throughput in bf16 against
    fp32; the second row's note gives what channels_last does to the bare forward in each
    precision. With ``labels`` the agreement note gives fp32's accuracy: the fewer images
    a classifier gets right, the closer its top-1 margins, and the more bf16 can flip.
    """
    _, z32 = features_and_logits(model, images, batch, device, "fp32")
    _, z16 = features_and_logits(model, images, batch, device, "bf16")
    same = int((z32.argmax(1) == z16.argmax(1)).sum())
    n = len(images)
    if labels is not None:
        note = f"{note}, fp32 accuracy {(z32.argmax(1) == labels).mean():.2f}"
    x = torch.as_tensor(images).to(device)
    fns = {
        "fp32": lambda: features_and_logits(model, images, batch, device, "fp32"),
        "bf16": lambda: features_and_logits(model, images, batch, device, "bf16"),
        **{
            f"{p} {fmt}": lambda p=p, nhwc=(fmt == "NHWC"): bare_forward(
                model, x, batch, device, p, nhwc
            )
            for p in ("fp32", "bf16")
            for fmt in ("NCHW", "NHWC")
        },
    }
    best = interleaved_best({k: synced(fn, device) for k, fn in fns.items()}, repeat=repeat)
    gap = np.abs(z16 - z32).max() / max(float(np.abs(z32).max()), 1e-12)
    cl = "; ".join(
        f"{p}: channels_last x{best[f'{p} NCHW'] / best[f'{p} NHWC']:.2f}" for p in ("fp32", "bf16")
    )
    return [
        Row(
            f"{label} bf16",
            "fp32, same images",
            "top-1 agreement (fraction equal)",
            same,
            n,
            target,
            higher_is_better=True,
            note=f"{note}; {n - same} of {n} top-1 differ; max |logit diff| {gap:.1e} of max |logit|",
        ),
        throughput_row(
            f"{label} bf16",
            "fp32, same batches",
            "throughput ratio (bf16/fp32)",
            best["bf16"],
            best["fp32"],
            None,
            work=n,
            note=(
                f"{note}; bf16 {n / best['bf16']:.0f} img/s, fp32 {n / best['fp32']:.0f} img/s "
                f"(bf16 with channels_last); bare forward {cl} (used with bf16 only: in fp32 "
                "it is not bitwise NCHW)"
            ),
        ),
    ]


def fitted_bf16_rows(
    label: str,
    arch: str,
    size: int,
    batch: int,
    device: torch.device,
    *,
    per_class: int = 40,
    repeat: int = 3,
) -> list[Row]:
    """:func:`bf16_rows` of ``arch`` with a head fitted to the even generated birds,
    agreement on the odd ones (images the head has not seen), reported: a random-init
    body's features give a weak classifier with close margins, the pessimistic case."""
    images, labels = birds(size, per_class)
    fit, held_out = np.ascontiguousarray(images[::2]), np.ascontiguousarray(images[1::2])
    model = fitted_classifier(arch, fit, labels[::2], 20, device, batch)
    note = f"{size}px, batch {batch}, random-init body, head fitted to {len(fit)} generated birds"
    return bf16_rows(
        label, model, held_out, batch, device, note=note, labels=labels[1::2], repeat=repeat
    )
