"""Shared fixtures: tiny deterministic configs and a scratch copy of the pipeline."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]

# The smallest params that still exercise every stage: used by the dvc/Prefect tests.
TINY_PARAMS = {
    "base": {"seed": 0, "device": "cpu", "num_threads": 1, "chunk_size": 8},
    "dataset": {
        "source": "synthetic",
        "image_size": 32,
        "val_fraction": 0.2,
        "test_fraction": 0.3,
        "synthetic": {"num_classes": 4, "images_per_class": 10, "families": 2, "clutter": 2},
    },
    "train": {"epochs": 1, "batch_size": 16},
    "features": {"batch_size": 16},
}


def deep_update(base: dict, new: dict) -> dict:
    out = dict(base)
    for k, v in new.items():
        out[k] = (
            deep_update(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
        )
    return out


def tiny_params() -> dict:
    """The repository's params.yaml with the tiny overrides applied."""
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    return deep_update(params, TINY_PARAMS)


def pipeline_env() -> dict[str, str]:
    """Environment in which dvc's ``python -m stages.X`` finds this interpreter."""
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONPATH"] = ""  # the scratch repo's own stages/ and advinterp/ come first via cwd
    env.pop("DVC_NO_ANALYTICS", None)
    env["DVC_NO_ANALYTICS"] = "1"
    return env


def run(cmd: list[str], cwd: Path, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, cwd=cwd, env=pipeline_env(), capture_output=True, text=True)
    if check and proc.returncode != 0:
        raise AssertionError(
            f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
        )
    return proc


@pytest.fixture
def pipeline_repo(tmp_path: Path) -> Path:
    """A fresh git+dvc repository holding a copy of the pipeline and tiny params."""
    repo = tmp_path / "repo"
    repo.mkdir()
    for name in ("advinterp", "stages", "flows"):
        shutil.copytree(ROOT / name, repo / name, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("dvc.yaml", ".dvcignore", ".gitignore"):
        shutil.copy(ROOT / name, repo / name)
    (repo / "params.yaml").write_text(yaml.safe_dump(tiny_params(), sort_keys=False))
    run(["git", "init", "-q"], repo)
    run(["git", "config", "user.email", "ci@example.invalid"], repo)
    run(["git", "config", "user.name", "ci"], repo)
    run([sys.executable, "-m", "dvc", "init", "-q"], repo)
    run([sys.executable, "-m", "dvc", "config", "core.analytics", "false"], repo)
    run(["git", "add", "-A"], repo)
    run(["git", "commit", "-qm", "pipeline"], repo)
    return repo
