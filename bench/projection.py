"""The real run projected: what each heavy stage stores and computes at CUB x ResNet-152.

Not a benchmark (nothing is timed here): the sizes follow from the real params file
(``params/cub_resnet152.yaml``), CUB-200-2011's split (5,994 official training images,
5,794 test) and the storage ratio measured by ``python -m bench storage``; the work is
counted in forward and backward passes of the classifier. A time per stage needs the
GPU throughputs of ``python -m bench gpu``: until a GPU machine has run it, that column
says so. ``python -m bench.projection`` writes ``bench/results/projection.md``, which the
README includes (``python -m flows.generate docs``).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
REAL = ROOT / "params" / "cub_resnet152.yaml"
RESULTS = ROOT / "bench" / "results"
OUT = RESULTS / "projection.md"
CUB_TRAIN, CUB_TEST = 5994, 5794  # the official train_test_split.txt
FEATURES = 2048  # ResNet-152's pooled features
log = logging.getLogger("bench.projection")


@dataclass(frozen=True)
class Projected:
    stage: str
    stored: str
    passes: str


def _gb(nbytes: float) -> str:
    return f"{nbytes / 1e9:,.1f} GB" if nbytes >= 1e9 else f"{nbytes / 1e6:,.0f} MB"


def _storage_ratio(bench: dict) -> float | None:
    rows = bench.get("storage", {}).get("rows", [])
    return next((r["ratio"] for r in rows if r["measure"].startswith("adversarial images")), None)


def project(params: dict, bench: dict) -> list[Projected]:
    """One row per heavy stage of ``params`` (a CUB x ResNet params file)."""
    size = params["dataset"]["image_size"]
    image = 3 * size * size * 4  # float32
    val = params["dataset"]["val_fraction"]
    train_n = round(CUB_TRAIN * (1 - val))
    models = 1 + len(params["adv_train"]["eps"])
    eps, modes = len(params["attack"]["eps"]), 2
    attacked = params["attack"]["max_images"] or CUB_TEST
    adversarial = attacked * eps * modes * models
    steps = params["attack"]["steps"]
    at = params["adv_train"]
    ratio = _storage_ratio(bench)
    attack_stored = f"{_gb(adversarial * image)} as float32"
    if ratio:
        attack_stored += f", {_gb(adversarial * image / ratio)} relative to the clean images"
    return [
        Projected(
            "dataset",
            f"{_gb((CUB_TRAIN + CUB_TEST) * image)} as float32 ({CUB_TRAIN + CUB_TEST:,} images)",
            "none (JPEG decoding)",
        ),
        Projected(
            "train",
            "one checkpoint",
            f"{params['train']['epochs'] * train_n:,} forward+backward",
        ),
        Projected(
            "features",
            _gb((CUB_TRAIN + CUB_TEST) * FEATURES * 4),
            f"{CUB_TRAIN + CUB_TEST:,} forward",
        ),
        Projected(
            "adv_train",
            f"{len(at['eps'])} checkpoints",
            f"{len(at['eps']) * at['epochs'] * train_n * (at['steps'] + 1):,} forward+backward "
            f"({len(at['eps'])} models x {at['epochs']} epochs x PGD-{at['steps']} + update)",
        ),
        Projected(
            "attack",
            attack_stored,
            f"{adversarial * steps:,} forward+backward ({adversarial:,} images: {attacked:,} x "
            f"{eps} eps x {modes} modes x {models} models, IFGSM-{steps})",
        ),
        Projected(
            "adv_features",
            _gb((adversarial + attacked * models) * FEATURES * 4),
            f"{adversarial + attacked * models:,} forward",
        ),
    ]


def markdown(rows: list[Projected], gpu_measured: bool) -> str:
    time = "from `bench gpu`" if gpu_measured else "awaits `python -m bench gpu` on a GPU"
    lines = [
        f"| stage | stores | classifier passes | time on a GPU ({time}) |",
        "|---|---|---|---|",
    ]
    for r in rows:
        lines.append(f"| {r.stage} | {r.stored} | {r.passes} | — |")
    return "\n".join(lines) + "\n"


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    params = yaml.safe_load(REAL.read_text())
    path = RESULTS / "bench.json"
    bench = json.loads(path.read_text()).get("benchmarks", {}) if path.exists() else {}
    OUT.write_text(markdown(project(params, bench), "gpu" in bench))
    log.info("wrote %s", OUT.relative_to(ROOT))


if __name__ == "__main__":
    main()
