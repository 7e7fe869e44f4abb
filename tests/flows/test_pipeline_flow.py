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
from flows.generate import declarations, producers, upstream
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
    """The flow reads dvc.yaml; dvc.yaml is generated from the declarations: the flow runs
    the declared stages in their DAG order, each after the stages whose outputs it reads."""
    declared = declarations()
    made = producers(declared)
    flow = stage_order(pipeline_repo)
    assert [s.name for s in flow] == [s.name for s in declared]
    for info, stage in zip(flow, declared, strict=True):
        if not stage.gathers:  # the report reads every stage's results, not only inputs
            assert set(info.upstream) == upstream(stage, made), stage.name
        metrics = {Path(o.path) for o in stage.outputs.values() if o.kind == "metrics"}
        assert set(info.metrics) == metrics, stage.name
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
