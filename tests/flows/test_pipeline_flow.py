"""The Prefect flow on a real (temporary) Prefect server and a real DVC pipeline."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest
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
    upstream,
)
from flows.pipeline import StageFailedError, pipeline


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
    runs = dict(instances(load_profiles(pipeline_repo), declared))
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
        metrics = {Path(o.path).name for o in stage.outputs.values() if o.kind == "metrics"}
        assert {p.name for p in info.metrics} == metrics, info.name
    only = [s.name for s in stage_order(pipeline_repo, ["train"])]
    assert only == ["dataset", "train"]


@pytest.mark.slow
def test_flow_runs_then_skips_and_publishes(pipeline_repo, prefect_server):
    first = pipeline(repo=str(pipeline_repo), targets=["features"])
    assert [(r.name, r.outcome) for r in first] == [
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
