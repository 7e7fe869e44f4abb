"""The whole DAG through a real ``dvc repro`` in a scratch git repository."""

from __future__ import annotations

import json
import sys

import pytest
import yaml

from advinterp.profiles import locate
from advinterp.store import open_store
from flows.generate import declarations, instances, load_profiles
from tests.conftest import run
from tests.stages.stage_world import downstream

DVC = [sys.executable, "-m", "dvc"]


def _ran(output: str) -> set[str]:
    return {line.split("'")[1] for line in output.splitlines() if line.startswith("Running stage")}


@pytest.mark.slow
def test_repro_end_to_end_then_noop_then_downstream_only(pipeline_repo):
    stages = declarations()
    by_name = {s.name: s for s in stages}
    runs = instances(load_profiles(pipeline_repo), stages)
    first = run([*DVC, "repro"], pipeline_repo)
    # Every run of every profile, once: the findings read the digits profile's results.
    assert _ran(first.stdout) == {name for name, _ in runs}, first.stdout
    for name, s in runs:
        profile = name.split("/")[1] if ":" in name else None
        seed = name.split("@")[1] if "@" in name else None
        for o in s.outputs.values():
            path = locate(o.path, profile, seed)
            assert (pipeline_repo / path).exists(), f"{name} did not write {path}"

    metrics = json.loads((pipeline_repo / by_name["train"].outputs["metrics"].path).read_text())
    assert 0.0 <= metrics["test_accuracy"] <= 1.0
    feats = open_store(
        pipeline_repo / by_name["features"].outputs["out"].path, {"features": 2, "logits": 2}
    )
    assert feats["features"].shape == (40, 128)
    assert not list(pipeline_repo.glob("**/.*.tmp-*")), "temporary outputs left behind"

    second = run([*DVC, "repro"], pipeline_repo)
    assert _ran(second.stdout) == set(), second.stdout
    status = run([*DVC, "status"], pipeline_repo)
    assert "up to date" in status.stdout

    params_path = pipeline_repo / "params.yaml"
    params = yaml.safe_load(params_path.read_text())
    params["features"]["batch_size"] = 7
    params_path.write_text(yaml.safe_dump(params, sort_keys=False))
    ran = _ran(run([*DVC, "repro"], pipeline_repo).stdout)
    assert not {n for n in ran if ":" in n}, ran  # the other profiles' params did not change
    third = {n.split("@")[0] for n in ran}
    # Every stage that declares the `features` section reruns (features, adv_features);
    # besides them only what reads their outputs may (when those changed).
    readers = {s.name for s in stages if "features" in s.params}
    assert {"features", "adv_features"} <= readers <= third, third
    assert third <= readers.union(*(downstream(stages, r) for r in readers)), third
