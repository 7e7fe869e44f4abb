"""The Prefect flow on a real (temporary) Prefect server and a real DVC pipeline."""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey
from prefect.client.schemas.sorting import ArtifactSort
from prefect.testing.utilities import prefect_test_harness

from flows.dvc_dag import stage_order
from flows.generate import (
    declarations,
    instances,
    load_profiles,
    producers,
    profile_names,
    run_outputs,
    upstream,
)
from flows.pipeline import StageFailedError, pipeline, stage_slots


@pytest.fixture(scope="module")
def prefect_server():
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    with prefect_test_harness(server_startup_timeout=120):
        yield


async def _artifact(key: str):
    """The newest version of an artifact key (each flow run adds one)."""
    async with get_client() as client:
        found = await client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[key])),
            sort=ArtifactSort.CREATED_DESC,
            limit=1,
        )
    assert found, f"no artifact {key}"
    return found[0]


def test_stage_order_is_the_declared_dag(pipeline_repo):
    """The flow reads the dvc.yaml files; they are generated from the declarations: the
    flow runs every stage run (each seed, each profile) after the runs it reads."""
    declared = declarations()
    made = producers(declared)
    runs = dict(instances(load_profiles(pipeline_repo), declared, pipeline_repo))
    flow = stage_order(pipeline_repo)
    assert sorted(s.name for s in flow) == sorted(runs)
    seen: set[str] = set()
    base = lambda name: name.rsplit(":", 1)[-1].split("@")[0]  # noqa: E731
    for info in flow:
        assert set(info.upstream) <= seen, info.name  # upstream first
        seen.add(info.name)
        stage = runs[info.name]
        if not stage.gathers:  # the report reads every stage's results, not only inputs
            # Within the run's own dvc.yaml: the declared upstream this profile runs.
            here = info.name.rsplit(":", 1)[0] if ":" in info.name else None
            mine = {base(n) for n in runs if (n.rsplit(":", 1)[0] if ":" in n else None) == here}
            expected = upstream(stage, made, profile_names()) & mine
            same_file = {
                u for u in info.upstream if (u.rsplit(":", 1)[0] if ":" in u else None) == here
            }
            assert {base(u) for u in same_file} == expected, info.name
        paths = run_outputs(info.name, stage)
        metrics = {Path(paths[f]).name for f, o in stage.outputs.items() if o.kind == "metrics"}
        assert {p.name for p in info.metrics} == metrics, info.name
    only = [s.name for s in stage_order(pipeline_repo, ["train"])]
    assert only == ["validate", "dataset", "train"]


@pytest.mark.slow
def test_flow_runs_then_skips_and_publishes(pipeline_repo, prefect_server):
    first = pipeline(repo=str(pipeline_repo), targets=["features"])
    assert [(r.name, r.outcome) for r in first] == [
        ("validate", "ran"),
        ("dataset", "ran"),
        ("train", "ran"),
        ("features", "ran"),
    ]
    second = pipeline(repo=str(pipeline_repo), targets=["features"])
    assert {r.outcome for r in second} == {"skipped"}

    outcomes = asyncio.run(_artifact("stage-outcomes"))
    assert outcomes.type == "table"
    assert "skipped" in str(outcomes.data)
    metrics = asyncio.run(_artifact("train-metrics"))
    assert "test_accuracy" in str(metrics.data)

    # A train param changes: train reruns, and so must features, which the flow's opening
    # `dvc status` found current before train rebuilt the model that features reads.
    params = pipeline_repo / "params.yaml"
    params.write_text(params.read_text().replace("epochs: 1", "epochs: 2"))
    third = pipeline(repo=str(pipeline_repo), targets=["features"])
    assert [(r.name, r.outcome) for r in third] == [
        ("validate", "skipped"),
        ("dataset", "skipped"),
        ("train", "ran"),
        ("features", "ran"),
    ]


@pytest.mark.slow
def test_failed_stage_fails_the_flow(pipeline_repo, prefect_server):
    params = pipeline_repo / "params.yaml"
    params.write_text(params.read_text().replace("epochs: 1", "epochs: -3"))
    with pytest.raises(StageFailedError, match="train"):
        pipeline(repo=str(pipeline_repo), targets=["train"])


def test_stage_slots_hand_out_gpus_in_turn():
    slots = stage_slots(3, [0, 1])
    assert [slots.get_nowait() for _ in range(3)] == ["0", "1", "0"]
    assert slots.empty()
    plain = stage_slots(2, None)
    assert [plain.get_nowait() for _ in range(2)] == [None, None]


def _outs(repo: Path, stages: list[str]) -> dict[str, object]:
    """Each stage's outputs as dvc.lock hashes them; a metrics JSON by its content less
    the wall times it reports (``*seconds*`` keys: a measurement, not a result)."""
    lock = yaml.safe_load((repo / "dvc.lock").read_text())["stages"]

    def content(path: str, md5: str) -> object:
        if not path.endswith("metrics.json"):
            return md5
        data = json.loads((repo / path).read_text())
        return {k: v for k, v in data.items() if "seconds" not in k}

    return {
        s: sorted((o["path"], str(content(o["path"], o.get("md5", "")))) for o in lock[s]["outs"])
        for s in stages
    }


@pytest.mark.slow
def test_jobs_run_independent_branches_at_once_with_identical_results(
    pipeline_repo, prefect_server, tmp_path
):
    sequential = tmp_path / "sequential"
    shutil.copytree(pipeline_repo, sequential)
    # validate -> dataset -> {train -> lan_train, train_detector}
    targets = ["train_detector", "lan_train"]
    together = pipeline(repo=str(pipeline_repo), targets=targets, jobs=2)
    alone = pipeline(repo=str(sequential), targets=targets, jobs=1)
    ran = {r.name for r in together if r.outcome == "ran"}
    assert (
        ran
        == {r.name for r in alone if r.outcome == "ran"}
        == {
            "validate",
            "dataset",
            "train",
            "train_detector",
            "lan_train",
        }
    )
    # train_detector needs only the dataset: with two slots it overlaps train's branch
    spans = {r.name: (r.started, r.finished) for r in together}
    det = spans["train_detector"]
    assert any(spans[s][0] < det[1] and det[0] < spans[s][1] for s in ("train", "lan_train")), spans
    in_turn = {r.name: (r.started, r.finished) for r in alone}
    order = sorted(in_turn, key=lambda n: in_turn[n][0])
    assert all(in_turn[a][1] <= in_turn[b][0] for a, b in itertools.pairwise(order)), in_turn
    # bitwise: every output hash equal, DVC's record complete and current in both
    assert _outs(pipeline_repo, sorted(ran)) == _outs(sequential, sorted(ran))
    for repo in (pipeline_repo, sequential):
        status = subprocess.run(
            [sys.executable, "-m", "dvc", "status", *targets],
            cwd=repo,
            capture_output=True,
            text=True,
            check=True,
        )
        assert "up to date" in status.stdout, status.stdout
