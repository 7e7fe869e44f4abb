"""bench.memory without building its worlds: it is registered, it measures every stage
that fills shards, a world's paths and upstream order, one real child's peak, a row."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from advinterp.store import open_store, require_array
from bench import memory
from bench.__main__ import BENCHMARKS
from stages.stage import ABSENT
from tests.conftest import ROOT, tiny_params


def test_registered_after_dask_scaling_before_pipeline():
    assert BENCHMARKS.index("dask_scaling") < BENCHMARKS.index("memory")
    assert BENCHMARKS.index("memory") < BENCHMARKS.index("pipeline")


def test_every_stage_that_fills_shards_is_measured():
    calls = re.compile(r"\b(run_shards|resumable_output|fill_shards)\(")
    sharded = {p.stem for p in (ROOT / "stages").glob("*.py") if calls.search(p.read_text())}
    assert {"features", "attack"} <= sharded
    assert sharded <= {m.name for m in memory.MEASURED}


def test_a_world_reads_the_small_worlds_models_and_runs_upstream_first(tmp_path):
    world = memory.World(tmp_path / "x4", 4, tmp_path / "x1")
    params = yaml.safe_load(world.params.read_text())
    assert params["dataset"]["synthetic"]["images_per_class"] == 128
    assert params["explain"]["ifgsm_images"] == 128
    assert world.path("attack", "model") == tmp_path / "x1" / "artifacts/train/model.pt"
    assert world.path("attack", "dataset") == tmp_path / "x4" / "data/dataset.zarr"
    order = [s.name for s in world.needed(["explain"], shared=False)]
    assert "train" not in order
    assert order.index("dataset") < order.index("attack") < order.index("explain")
    assert "train" in [s.name for s in world.needed(["explain"], shared=True)]


def test_run_stage_gives_the_peak_of_the_stage_it_ran(tmp_path):
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump(tiny_params()))
    stage = memory.World(tmp_path / "w", 1, tmp_path / "w").stages["dataset"]
    paths = {flag: tmp_path / "dataset.zarr" for flag in stage.outputs}
    assert set(stage.inputs) <= set(stage.optional)
    paths.update({flag: Path(ABSENT) for flag in stage.inputs})
    peak = memory.run_stage(stage, params, paths, tmp_path)
    assert 100 < peak < 8000  # MiB: torch alone is ~0.6 GiB
    assert require_array(open_store(tmp_path / "dataset.zarr"), "images").shape[0] == 40


def test_row_is_the_ratio_of_the_peaks_and_names_what_grows():
    flat = memory._row(memory.MEASURED[0], (800.0, 4.0, 800), (840.0, 10.0, 3200))
    assert flat.ratio == pytest.approx(1.05) and flat.passed
    assert "+40 MiB for 2400 more" in flat.note and "grows" not in flat.note
    explain = next(m for m in memory.MEASURED if m.name == "explain")
    grows = memory._row(explain, (1000.0, 9.0, 70), (1200.0, 30.0, 262))
    assert not grows.passed and "gather_sets" in grows.note
