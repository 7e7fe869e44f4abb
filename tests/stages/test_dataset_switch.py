"""Switching datasets is an edit of ``dataset`` alone, and a params file that does not
fit the dataset fails in the first stage, before anything expensive runs."""

from __future__ import annotations

import json
import sys
import time

import pandas as pd
import pytest
import yaml

from advinterp.store import open_store
from tests.conftest import ROOT, first_seed, run, scratch_repo
from tests.data.layouts import make_cub_world

DVC = [sys.executable, "-m", "dvc"]
CLASSES = 6  # the embedded default has 20, the tiny one 4


def _ran(output: str) -> list[str]:
    return [line.split("'")[1] for line in output.splitlines() if line.startswith("Running stage")]


@pytest.fixture
def switched(tmp_path):
    """The tiny pipeline with the default's class choices, its ``dataset`` section
    pointed at a CUB_200_2011 layout of ``CLASSES`` classes, and nothing else edited."""
    repo = scratch_repo(tmp_path / "repo")
    params = yaml.safe_load((repo / "params.yaml").read_text())
    default = yaml.safe_load((ROOT / "params.yaml").read_text())
    for section in ("a2e_explain", "a2e_robust"):  # the tiny params pin [1]: use the default's
        params[section]["targets"] = default[section]["targets"]
    make_cub_world(repo / "data/CUB_200_2011", CLASSES, 10)
    params["dataset"] = {**params["dataset"], "source": "cub", "root": "data/CUB_200_2011"}
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    run(["git", "add", "-A"], repo)
    run(["git", "commit", "-qm", "switch to a CUB layout"], repo)
    return repo


@pytest.mark.slow
def test_editing_only_dataset_runs_the_class_dependent_stages(switched):
    # the a2e stages' classes are checked here and resolved the same way in the stage
    # (advinterp.config.classes); the whole DAG on a 6-class CUB layout, a2e included,
    # runs in tests/stages/test_pipeline_dvc.py
    out = run([*DVC, "repro", "localized_attack"], switched)
    assert _ran(out.stdout)[:2] == ["validate", "dataset"], out.stdout
    facts = json.loads((switched / "artifacts/validate/dataset.json").read_text())
    assert facts["source"] == "cub" and len(facts["class_names"]) == CLASSES
    classes = pd.read_csv(switched / "artifacts/validate/classes.csv")
    drawn = classes[classes.param == "a2e_explain.targets"]["class"].tolist()
    assert len(drawn) == 2 and all(0 <= c < CLASSES for c in drawn)
    assert drawn == classes[classes.param == "a2e_robust.targets"]["class"].tolist()
    store = open_store(switched / first_seed("artifacts/localized_attack/attacks.zarr"))
    assert store.attrs["target"] == 0 and len(store.attrs["class_names"]) == CLASSES


@pytest.mark.slow
def test_a_class_the_dataset_lacks_fails_in_seconds_before_the_dataset_is_built(switched):
    params = yaml.safe_load((switched / "params.yaml").read_text())
    params["a2e_explain"]["targets"] = [11]  # a class of the 20-class default, not of this one
    (switched / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    start = time.monotonic()
    out = run([*DVC, "repro"], switched, check=False)
    took = time.monotonic() - start
    assert out.returncode != 0
    assert _ran(out.stdout) == ["validate"], out.stdout
    assert (
        "a2e_explain.targets[0]: class 11 does not exist (the dataset has 6 classes" in out.stderr
    )
    assert not (switched / "data/dataset.zarr").exists()
    assert took < 120, took  # a bound on the failure, not a benchmark: nothing else ran
