"""Fixtures of the fault tests: a tiny dataset store, and fixtures of other test packages
used here by name (the shard tests' inputs and local run, the flow tests' real Prefect
server)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Mapping
from pathlib import Path

import pytest
import yaml

from stages.stage import ABSENT
from tests.conftest import ROOT, pipeline_env, tiny_params
from tests.flows.test_prefect_server import prefect_server  # noqa: F401
from tests.stages.stage_world import declared
from tests.stages.test_shards import inputs, reference  # noqa: F401


def run_stage(
    stage: str,
    params: Path,
    paths: Mapping[str, Path],
    preexec_fn: Callable[[], None] | None = None,
) -> subprocess.CompletedProcess:
    """``python -m stages.<stage> --params <params>`` with its declared flags set to
    ``paths`` and its optional inputs not in ``paths`` absent (these runs stand outside
    the pipeline: no ``validate`` ran before them), in its own process (``preexec_fn``
    runs in that process first)."""
    s = declared(stage)
    absent = {flag: ABSENT for flag in s.optional if flag not in paths}
    flags = s.argv({flag: str(p) for flag, p in paths.items()} | absent)
    return subprocess.run(
        [sys.executable, "-m", f"stages.{stage}", "--params", str(params), *flags],
        cwd=ROOT,
        env=pipeline_env() | {"PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=300,
        preexec_fn=preexec_fn,
    )


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory) -> tuple[Path, Path]:
    """The tiny params (tests/conftest.py) and the store ``python -m stages.dataset``
    writes from them, outside any repository."""
    d = tmp_path_factory.mktemp("tiny_dataset")
    params = d / "params.yaml"
    params.write_text(yaml.safe_dump(tiny_params(), sort_keys=False))
    out = d / "dataset.zarr"
    proc = run_stage("dataset", params, {"out": out})
    assert proc.returncode == 0, proc.stderr[-3000:]
    return params, out
