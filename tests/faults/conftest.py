"""Fixtures of the fault tests: a tiny dataset store, and fixtures of other test packages
used here by name (the shard tests' inputs and local run, the flow tests' real Prefect
server)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import ROOT, pipeline_env, tiny_params
from tests.flows.test_prefect_server import prefect_server  # noqa: F401
from tests.stages.test_shards import inputs, reference  # noqa: F401


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory) -> tuple[Path, Path]:
    """The tiny params (tests/conftest.py) and the store ``python -m stages.dataset``
    writes from them, outside any repository."""
    d = tmp_path_factory.mktemp("tiny_dataset")
    params = d / "params.yaml"
    params.write_text(yaml.safe_dump(tiny_params(), sort_keys=False))
    out = d / "dataset.zarr"
    cmd = [sys.executable, "-m", "stages.dataset", "--params", str(params), "--out", str(out)]
    proc = subprocess.run(
        cmd, cwd=ROOT, env=pipeline_env(), capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return params, out
