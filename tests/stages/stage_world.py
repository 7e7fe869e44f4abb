"""A tiny world of valid stage inputs, built by running the stages themselves.

``STAGES`` is every stage's command line (as dvc.yaml gives it, with paths as
parameters); :func:`build_world` runs the ``BUILD`` stages on the tiny params of
tests/conftest.py through a :class:`~tests.stages.stage_runner.StageRunner`: first
``dataset -> train -> features -> adv_train -> attack -> adv_features -> sje`` (these must
succeed), then the others (a failure there only marks the stage and its outputs
unavailable, so the tests that need them skip with the reason).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import ROOT, deep_update, tiny_params
from tests.stages.stage_runner import StageRunner

# On top of tests/conftest.py TINY_PARAMS: explain's IFGSM set at an eps the tiny attack has,
# a2e targets that exist among the tiny dataset's 4 classes.
WORLD_PARAMS: dict[str, Any] = {
    "explain": {"ifgsm_eps": 0.06},
    "a2e_explain": {"targets": [1]},
    "a2e_robust": {"targets": [1]},
}

# Every stage's command line: flag -> ``in:<input name>`` or an output file name.
STAGES: dict[str, dict[str, str]] = {
    "dataset": {"out": "dataset.zarr"},
    "train": {
        "dataset": "in:dataset",
        "model": "model.pt",
        "metrics": "metrics.json",
        "history": "history.csv",
    },
    "features": {"images": "in:dataset", "model": "in:model", "out": "clean.zarr"},
    "adv_train": {
        "dataset": "in:dataset",
        "model": "in:model",
        "out": "robust",
        "metrics": "metrics.json",
        "history": "history.csv",
    },
    "attack": {
        "dataset": "in:dataset",
        "model": "in:model",
        "robust": "in:robust",
        "out": "attack.zarr",
        "metrics": "metrics.json",
    },
    "adv_features": {
        "dataset": "in:dataset",
        "attack": "in:attack",
        "model": "in:model",
        "robust": "in:robust",
        "out": "features.zarr",
    },
    "sje": {
        "dataset": "in:dataset",
        "features": "in:adv_features",
        "out": "sje.zarr",
        "metrics": "metrics.json",
        "history": "history.csv",
    },
    "accuracy": {
        "features": "in:adv_features",
        "sje": "in:sje",
        "table": "table.csv",
        "curves": "curves",
        "figure": "figure4.png",
        "metrics": "metrics.json",
    },
    "localized_attack": {
        "dataset": "in:dataset",
        "model": "in:model",
        "out": "attacks.zarr",
        "metrics": "metrics.json",
        "attempts": "attempts.csv",
    },
    "explain": {
        "dataset": "in:dataset",
        "model": "in:model",
        "localized": "in:localized",
        "attack": "in:attack",
        "out": "explanations.zarr",
    },
    "explain_eval": {
        "explanations": "in:explanations",
        "metrics": "metrics.json",
        "jaccard": "jaccard.csv",
        "hamming": "hamming.csv",
        "per_example": "per_example.csv",
        "figure_examples": "f3.png",
        "figure_curves": "f4.png",
        "figure_sets": "sets.png",
    },
    "train_detector": {
        "dataset": "in:dataset",
        "model": "detector.pt",
        "metrics": "metrics.json",
        "history": "history.csv",
    },
    "detect": {
        "dataset": "in:dataset",
        "attack": "in:attack",
        "detector": "in:detector",
        "out": "detections.zarr",
        "metrics": "metrics.json",
    },
    "ground": {
        "dataset": "in:dataset",
        "attack": "in:attack",
        "sje": "in:sje",
        "detections": "in:detections",
        "figures": "figures",
        "metrics": "metrics.json",
        "table": "table.csv",
    },
    "distances": {
        "attack": "in:attack",
        "sje": "in:sje",
        "figures": "figures",
        "metrics": "metrics.json",
        "table": "table.csv",
        "histograms": "histograms.csv",
        "curve": "curve.csv",
    },
    "lan_train": {
        "dataset": "in:dataset",
        "model": "in:model",
        "lan": "lan.pt",
        "masks": "masks.zarr",
        "metrics": "metrics.json",
        "history": "history.csv",
        "figure": "figure.png",
    },
    "mask_classifier": {
        "dataset": "in:dataset",
        "masks": "in:masks",
        "model": "f2.pt",
        "metrics": "metrics.json",
        "history": "history.csv",
    },
    "lan_attacks": {
        "dataset": "in:dataset",
        "model": "in:model",
        "source_model": "source.pt",
        "out": "adversarial.zarr",
        "metrics": "metrics.json",
        "history": "history.csv",
    },
    "lan_detect": {
        "dataset": "in:dataset",
        "model": "in:model",
        "lan": "in:lan",
        "masks": "in:masks",
        "mask_classifier": "in:mask_classifier",
        "adversarial": "in:adversarial",
        "metrics": "metrics.json",
        "roc": "roc",
        "roc_figure": "roc.png",
        "figure": "figure.png",
    },
    "report": {"dvc_yaml": "in:dvc_yaml", "out": "index.html"},
    "a2e_explain": {
        "dataset": "in:dataset",
        "model": "in:model",
        "second_model": "second.pt",
        "out": "perturbations.zarr",
        "metrics": "metrics.json",
        "curves": "curves.csv",
        "figure": "grid.png",
        "figure_regions": "regions.png",
    },
    "a2e_robust": {
        "dataset": "in:dataset",
        "model": "in:model",
        "second_model": "in:model",
        "robust": "in:robust",
        "out": "images.zarr",
        "metrics": "metrics.json",
        "figure_generation": "generation.png",
        "figure_inpainting": "inpainting.png",
        "figure_sketch": "sketch.png",
    },
    "igan_train": {
        "dataset": "in:dataset",
        "out": "igan",
        "metrics": "metrics.json",
        "history": "history.csv",
        "gan_history": "gan_history.csv",
    },
    "igan_explain": {
        "dataset": "in:dataset",
        "models": "in:igan_models",
        "out": "explanations.zarr",
        "figures": "figures",
    },
    "igan_vulnerability": {
        "dataset": "in:dataset",
        "models": "in:igan_models",
        "metrics": "metrics.json",
        "table": "table.csv",
        "figure": "table1.png",
    },
    "pooling_study": {
        "dataset": "in:dataset",
        "models": "in:igan_models",
        "twin": "twin.pt",
        "metrics": "metrics.json",
        "table": "table.csv",
    },
}

# The world: which stage makes which input (in this order); {} = a leaf (side outputs only).
BUILD: list[tuple[str, dict[str, str]]] = [
    ("dataset", {"out": "dataset"}),
    ("train", {"model": "model"}),
    ("features", {"out": "clean_features"}),
    ("adv_train", {"out": "robust"}),
    ("attack", {"out": "attack"}),
    ("adv_features", {"out": "adv_features"}),
    ("sje", {"out": "sje"}),
    ("accuracy", {}),
    ("distances", {}),
    ("localized_attack", {"out": "localized"}),
    ("explain", {"out": "explanations"}),
    ("explain_eval", {}),
    ("train_detector", {"model": "detector"}),
    ("detect", {"out": "detections"}),
    ("ground", {}),
    ("lan_train", {"lan": "lan", "masks": "masks"}),
    ("mask_classifier", {"model": "mask_classifier"}),
    ("lan_attacks", {"out": "adversarial"}),
    ("lan_detect", {}),
    ("a2e_explain", {}),
    ("a2e_robust", {}),
    ("igan_train", {"out": "igan_models"}),
    ("igan_explain", {}),
    ("igan_vulnerability", {}),
    ("pooling_study", {}),
]
CORE = 7  # the first CORE stages must succeed; a later one failing only skips its users


def stage_inputs(stage: str) -> set[str]:
    return {v[3:] for v in STAGES[stage].values() if v.startswith("in:")}


def stage_argv(stage: str, inputs: dict[str, Path], out: Path) -> list[str]:
    argv: list[str] = []
    for key, value in STAGES[stage].items():
        path = inputs[value[3:]] if value.startswith("in:") else out / value
        argv += ["--" + key.replace("_", "-"), str(path)]
    return argv


def build_world(
    runner: StageRunner, root: Path, params_file: Path, relative: bool = False
) -> tuple[dict[str, Path], dict[str, str]]:
    """Run the ``BUILD`` stages in ``root``; return (input paths, unavailable inputs).

    ``unavailable`` maps an input name, or ``stage:<name>`` for a stage that did not
    run, to the reason.

    ``relative``: pass paths relative to ``root`` (the stages run with ``root`` as their
    working directory), so two worlds built in two directories write identical attrs.
    """
    base = Path(".") if relative else root
    inputs: dict[str, Path] = {}
    unavailable: dict[str, str] = {}
    for k, (stage, makes) in enumerate(BUILD):
        side = base / "side" / stage
        names = {flag: base / name / STAGES[stage][flag] for flag, name in makes.items()}
        inputs.update({makes[flag]: path for flag, path in names.items()})
        lacking = [n for n in stage_inputs(stage) if n in unavailable or n not in inputs]
        if lacking:
            unavailable.update({n: f"needs {lacking}" for n in [*makes.values(), f"stage:{stage}"]})
            continue
        argv = stage_argv(stage, inputs, side)
        for flag, path in names.items():
            argv[argv.index("--" + flag.replace("_", "-")) + 1] = str(path)
        code, _, err = runner.run(stage, ["--params", str(params_file), *argv], root)
        if code != 0:
            assert k >= CORE, f"building the tiny chain: {stage} failed:\n{err}"
            tail = err.strip().splitlines()[-1:] or ["?"]
            failed = f"{stage} failed: {tail[0]}"
            unavailable.update({n: failed for n in [*makes.values(), f"stage:{stage}"]})
    return inputs, unavailable


@dataclass
class World:
    """Tiny valid inputs (absolute paths), the params that made them, and their runner."""

    root: Path
    params: dict[str, Any]
    inputs: dict[str, Path]
    unavailable: dict[str, str]
    runner: StageRunner

    def input(self, name: str) -> Path:
        """The input's path; skips the calling test when it could not be built."""
        if name in self.unavailable:
            pytest.skip(f"input {name} could not be built: {self.unavailable[name]}")
        return self.inputs[name]


@contextlib.contextmanager
def make_world(root: Path) -> Iterator[World]:
    """Build a world in ``root`` (relative paths, see :func:`build_world`) with its own
    fresh :class:`StageRunner`, kept running for the caller."""
    root.mkdir(parents=True, exist_ok=True)
    params = deep_update(tiny_params(), WORLD_PARAMS)
    params_file = root / "params.yaml"
    params_file.write_text(yaml.safe_dump(params, sort_keys=False))
    runner = StageRunner()
    try:
        inputs, unavailable = build_world(runner, root, params_file, relative=True)
        inputs = {k: root / v for k, v in inputs.items()}
        inputs["dvc_yaml"] = ROOT / "dvc.yaml"
        yield World(root, params, inputs, unavailable, runner)
    finally:
        runner.close()
