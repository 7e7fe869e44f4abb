"""``gpu``: the CPU rows' comparisons on CUDA at the real run's scale, in fp32 and bf16.

The scale is ``params/cub_resnet152.yaml``'s: 224 px images, ResNet-152 with CUB's 200
classes, and its ResNet-50 FPN attribute detector (``train_detector.model``). Each
measurement runs in fp32 and with ``base.precision: bf16`` (the stages' autocast):

- features: :func:`~advinterp.models.features.features_and_logits` from host arrays, as
  the stage calls it (pinned, non-blocking copies; bf16 in channels_last), against the
  bare forward of the same batches already on the device: time per image ratio.
- IFGSM-10: :func:`advinterp.attacks.ifgsm.ifgsm` against torchattacks' BIM and against
  the floor (10 bare forward+input-gradient passes), as ``bench/attack.py`` on the CPU.
- detect: :func:`~advinterp.detection.attribute_rcnn.detect` against the bare backbone
  forward (reported, as ``bench/detector.py``).
- bf16 against fp32: top-1 agreement and speed of the features pass, with a head fitted to
  generated birds at 224 px (:mod:`bench.precision`).

Weights are random and nothing is downloaded. "fp32" on CUDA is torch's default, under
which cuDNN convolutions may use TF32 (``torch.backends.cudnn.allow_tf32``); matmuls do not.

Run: ``python -m bench gpu`` (needs CUDA; a few minutes on an H100, stored with the other
rows). Smoke test on any machine: ``python -m bench.gpu --device cpu --tiny`` runs every
measurement at toy sizes and prints the table without storing it.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
import torchattacks

from advinterp.attacks.ifgsm import ifgsm
from advinterp.config.core import load
from advinterp.config.train_detector import TrainDetectorConfig
from advinterp.detection.attribute_rcnn import DetectorSpec, build_detector, detect
from advinterp.models.classifier import build_classifier
from advinterp.models.features import features_and_logits
from advinterp.models.frozen import frozen
from advinterp.runtime import Precision, autocast, resolve_device
from bench.attack import ifgsm_rows
from bench.precision import MEAN, STD, bare_forward, fitted_bf16_rows, synced
from bench.rows import Row, interleaved_best, throughput_row

log = logging.getLogger("bench.gpu")
CUB_PARAMS = Path(__file__).resolve().parents[1] / "params" / "cub_resnet152.yaml"
CUB_PARTS, CUB_ATTRIBUTES = 15, 312
PRECISIONS: tuple[Precision, ...] = ("fp32", "bf16")


@dataclass(frozen=True)
class Sizes:
    """How big each measurement is (:data:`FULL` on CUDA, :data:`TINY` for the smoke test)."""

    arch: str = "resnet152"
    num_classes: int = 200
    size: int = 224
    images: int = 2048  # features throughput
    batch: int = 128
    attack_images: int = 64  # one IFGSM batch
    steps: int = 10
    eps: float = 0.06
    detector_backbone: str = "resnet50"
    detector_images: int = 64
    detector_batch: int = 16
    per_class: int = 32  # generated birds per class (20 classes) for bf16 agreement
    repeat: int = 3


FULL = Sizes()
TINY = Sizes(
    arch="tiny_resnet",
    num_classes=4,
    size=32,
    images=8,
    batch=4,
    attack_images=4,
    steps=2,
    detector_backbone="resnet18",
    detector_images=2,
    detector_batch=2,
    per_class=4,
    repeat=1,
)


@dataclass(frozen=True)
class Measured:
    """A measurement's rows, what it measured (``label``) and its throughput (img/s)."""

    label: str
    rows: list[Row]
    img_per_s: float


def _best(fns: dict[str, Callable[[], object]], device: torch.device, repeat: int) -> dict:
    return interleaved_best({k: synced(fn, device) for k, fn in fns.items()}, repeat=repeat)


def features_rows(device: torch.device, sz: Sizes, precision: Precision) -> Measured:
    """The features pass from host arrays against the bare forward on the device."""
    torch.manual_seed(0)
    model = build_classifier(sz.arch, sz.num_classes, MEAN, STD).to(device).eval()
    host = np.random.default_rng(0).random((sz.images, 3, sz.size, sz.size), dtype=np.float32)
    x = torch.from_numpy(host).to(device)
    best = _best(
        {
            "ours": lambda: features_and_logits(model, host, sz.batch, device, precision),
            "bare": lambda: bare_forward(
                model, x, sz.batch, device, precision, precision == "bf16"
            ),
        },
        device,
        sz.repeat,
    )
    n = sz.images
    label = f"features ({sz.arch}, {sz.size}px)"
    row = Row(
        f"{label} {precision}",
        "bare forward, same batches already on the device",
        "time per image ratio (ours/bare)",
        best["ours"] / n,
        best["bare"] / n,
        1.15,
        higher_is_better=False,
        note=(
            f"batch {sz.batch}, {n} images from host memory; ours {n / best['ours']:.0f} img/s, "
            f"bare {n / best['bare']:.0f} img/s"
        ),
    )
    return Measured(label, [row], n / best["ours"])


def attack_rows(device: torch.device, sz: Sizes, precision: Precision) -> Measured:
    """IFGSM against torchattacks' BIM and the fwd+input-gradient floor, under ``precision``."""
    torch.manual_seed(0)
    model = build_classifier(sz.arch, sz.num_classes, MEAN, STD).to(device).eval()
    x = torch.rand(sz.attack_images, 3, sz.size, sz.size, device=device)
    y = torch.randint(0, sz.num_classes, (sz.attack_images,), device=device)
    alpha = 2.5 * sz.eps / sz.steps
    bim = torchattacks.BIM(model, eps=sz.eps, alpha=alpha, steps=sz.steps)

    def floor_pass() -> None:
        with frozen(model), torch.enable_grad():
            for _ in range(sz.steps):
                xa = x.clone().requires_grad_(True)
                torch.autograd.grad(F.cross_entropy(model(xa), y, reduction="sum"), xa)

    def under(fn: Callable[[], object]) -> Callable[[], None]:
        def run() -> None:
            with autocast(device, precision):
                fn()

        return run

    best = _best(
        {
            "ours": under(lambda: ifgsm(model, x, y, eps=sz.eps, steps=sz.steps, step_size=alpha)),
            "torchattacks": under(lambda: bim(x, y)),
            "floor": under(floor_pass),
        },
        device,
        sz.repeat,
    )
    n = sz.attack_images
    note = (
        f"batch {n}, {sz.size}px {sz.arch}, {sz.steps} steps; ours {n / best['ours']:.1f} img/s, "
        f"torchattacks {n / best['torchattacks']:.1f}, floor {n / best['floor']:.1f}"
    )
    label = f"attack (IFGSM-{sz.steps}, {sz.arch})"
    rows = ifgsm_rows(f"{label} {precision}", best, note)
    return Measured(label, rows, n / best["ours"])


def detector_spec(sz: Sizes) -> DetectorSpec:
    """The CUB run's detector (``params/cub_resnet152.yaml``) at ``sz``'s backbone and size."""
    model = load(TrainDetectorConfig, CUB_PARAMS).model
    params = {**model.model_dump(), "image_size": sz.size, "backbone": sz.detector_backbone}
    return DetectorSpec(num_classes=CUB_PARTS, num_attributes=CUB_ATTRIBUTES, **params)


def detect_rows(device: torch.device, sz: Sizes, precision: Precision) -> Measured:
    """``detect`` as the stage runs it against the bare backbone forward (reported)."""
    torch.manual_seed(0)
    spec = detector_spec(sz)
    model = build_detector(spec).to(device).eval()
    host = np.random.default_rng(0).random(
        (sz.detector_images, 3, sz.size, sz.size), dtype=np.float32
    )
    x = torch.from_numpy(host).to(device)
    mean = torch.tensor(spec.mean, device=device).view(1, 3, 1, 1)
    std = torch.tensor(spec.std, device=device).view(1, 3, 1, 1)

    @torch.no_grad()
    def backbone() -> None:
        with autocast(device, precision):
            for s in range(0, len(x), sz.detector_batch):
                model.backbone((x[s : s + sz.detector_batch] - mean) / std)

    best = _best(
        {
            "detect": lambda: detect(model, host, sz.detector_batch, device, precision),
            "backbone": backbone,
        },
        device,
        sz.repeat,
    )
    n = sz.detector_images
    label = f"detect (Faster R-CNN, {spec.backbone} FPN)"
    row = throughput_row(
        f"{label} {precision}",
        "bare backbone forward, same batches",
        "throughput ratio (detector/backbone)",
        best["detect"],
        best["backbone"],
        None,
        work=n,
        note=(
            f"batch {sz.detector_batch}, {sz.size}px, random weights, "
            f"{spec.rpn_post_nms_top_n_test} proposals; detector {n / best['detect']:.0f} img/s, "
            f"backbone {n / best['backbone']:.0f} img/s"
        ),
    )
    return Measured(label, [row], n / best["detect"])


def agreement_rows(device: torch.device, sz: Sizes) -> list[Row]:
    """bf16 against fp32 for the features pass (agreement, speed) with a fitted head."""
    label = f"features ({sz.arch}, {sz.size}px)"
    return fitted_bf16_rows(
        label, sz.arch, sz.size, sz.batch, device, per_class=sz.per_class, repeat=sz.repeat
    )


def measure(device: torch.device, sz: Sizes = FULL) -> list[Row]:
    """Every row: each stage in fp32 and bf16, bf16/fp32 speed per stage, then agreement."""
    rows: list[Row] = []
    for name, fn in (
        ("features", features_rows),
        ("attack", attack_rows),
        ("detect", detect_rows),
    ):
        speed = {}
        for precision in PRECISIONS:
            log.info("gpu: %s in %s on %s", name, precision, device)
            measured = fn(device, sz, precision)
            rows += measured.rows
            speed[precision] = measured.img_per_s
        rows.append(
            Row(
                f"{measured.label} bf16",
                "the same in fp32",
                "throughput ratio (bf16/fp32)",
                speed["bf16"],
                speed["fp32"],
                None,
                higher_is_better=True,
                note=f"bf16 {speed['bf16']:.1f} img/s, fp32 {speed['fp32']:.1f} img/s",
            )
        )
    log.info("gpu: bf16 agreement on %s", device)
    return rows + agreement_rows(device, sz)


def run() -> list[Row]:
    """``python -m bench gpu``: the full sizes on the first CUDA device."""
    if not torch.cuda.is_available():
        raise SystemExit(
            "bench gpu: needs a CUDA device, and torch sees none on this machine "
            "(run `python -m bench.gpu --device cpu --tiny` for a smoke test)"
        )
    device = torch.device("cuda")
    log.info("gpu: %s", torch.cuda.get_device_name(device))
    return measure(device, FULL)


def main(argv: list[str] | None = None) -> list[Row]:
    """``python -m bench.gpu [--device D] [--tiny]``: measure and print, store nothing."""
    from bench.__main__ import table  # local: bench.__main__ imports every benchmark by name

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", default="cuda", help="cuda, cuda:N or cpu (default cuda)")
    p.add_argument("--tiny", action="store_true", help="toy sizes: a smoke test in seconds")
    p.add_argument("--repeat", type=int, default=None, help="best of this many runs each")
    args = p.parse_args(argv)
    sizes = TINY if args.tiny else FULL
    if args.repeat is not None:
        sizes = replace(sizes, repeat=args.repeat)
    rows = measure(resolve_device(args.device), sizes)
    log.info("\n%s", table({"gpu": {"rows": [r.as_dict() for r in rows]}}))
    return rows


if __name__ == "__main__":
    main()
