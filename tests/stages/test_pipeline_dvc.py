"""The whole DAG of the real run's params, resized, through ``dvc repro``.

``params/cub_resnet152.yaml`` (CUB-200-2011 x ResNet-152 on a GPU) with only its sizes
replaced by ``params/smoke.yaml`` (``python -m flows.params overlay``, the documented
way), on a tiny CUB_200_2011 layout at the path the real config names: every section
and every stage of the real config runs, in a scratch git repository.
"""

from __future__ import annotations

import json
import sys

import pytest
import yaml

from advinterp.store import open_store
from flows.generate import declarations, instances, load_profiles, run_outputs
from tests.conftest import ROOT, run, scratch_repo
from tests.data.layouts import make_cub_world

DVC = [sys.executable, "-m", "dvc"]
REAL = "params/cub_resnet152.yaml"
SMOKE = "params/smoke.yaml"
CLASSES = 6  # not the embedded default's 20


def _ran(output: str) -> set[str]:
    return {line.split("'")[1] for line in output.splitlines() if line.startswith("Running stage")}


def real_config_repo(tmp_path):
    """A scratch repository whose params.yaml is the real config with the smoke sizes,
    and a CUB_200_2011 of ``CLASSES`` classes where that config looks for it."""
    repo = scratch_repo(tmp_path / "repo")
    overlay = ["overlay", str(ROOT / REAL), str(ROOT / SMOKE), "-o", str(repo / "params.yaml")]
    run([sys.executable, "-m", "flows.params", *overlay], repo)
    root = yaml.safe_load((repo / "params.yaml").read_text())["dataset"]["root"]
    make_cub_world(repo / root, CLASSES, 10)
    run(["git", "add", "-A"], repo)
    run(["git", "commit", "-qm", "real config, smoke sizes"], repo)
    return repo


@pytest.mark.slow
def test_real_config_runs_end_to_end_then_noop_then_a_param_stales_its_readers(tmp_path):
    repo = real_config_repo(tmp_path)
    stages = declarations()
    by_name = {s.name: s for s in stages}
    runs = instances(load_profiles(repo), stages, repo)
    first = run([*DVC, "repro"], repo)
    # Every run of every profile, once: the findings read the digits profile's results.
    assert _ran(first.stdout) == {name for name, _ in runs}, first.stdout
    for name, s in runs:
        for path in run_outputs(name, s).values():
            assert (repo / path).exists(), f"{name} did not write {path}"

    facts = json.loads((repo / by_name["validate"].outputs["facts"].path).read_text())
    assert facts["source"] == "cub" and len(facts["class_names"]) == CLASSES
    metrics = json.loads((repo / by_name["train"].outputs["metrics"].path).read_text())
    assert 0.0 <= metrics["test_accuracy"] <= 1.0
    feats = open_store(repo / by_name["features"].outputs["out"].path, {"features": 2, "logits": 2})
    assert feats["features"].shape == (60, 512)  # every image; resnet18's 512 features
    assert feats["logits"].shape == (60, CLASSES)
    assert not list(repo.glob("**/.*.tmp-*")), "temporary outputs left behind"

    second = run([*DVC, "repro"], repo)
    assert _ran(second.stdout) == set(), second.stdout
    status = run([*DVC, "status"], repo)
    assert "up to date" in status.stdout

    params_path = repo / "params.yaml"
    params = yaml.safe_load(params_path.read_text())
    params["features"]["batch_size"] = 7
    params_path.write_text(yaml.safe_dump(params, sort_keys=False))
    # What a repro would rerun first: exactly the stages that declare the `features`
    # section (features, adv_features); the rest only where their inputs then change.
    # `dvc status` says it without the minutes a third repro takes.
    stale = json.loads(run([*DVC, "status", "--json"], repo).stdout)
    assert not {n for n in stale if ":" in n}, stale  # the other profiles did not change
    readers = {s.name for s in stages if "features" in s.params}
    assert {"features", "adv_features"} <= readers
    assert {n.split("@")[0] for n in stale} == readers, stale
