"""dvc.yaml's code deps match the code each stage really imports.

DVC reruns a stage only when one of its declared deps changes, so a library module a
stage imports but does not declare would let an edited algorithm hide behind a stale
cache; a declared ``.py`` file it never imports reruns it (and everything downstream,
on a GPU for real runs) for nothing. Both directions are checked against the modules
a fresh interpreter loads when it imports ``stages.<name>``.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import yaml

from tests.conftest import ROOT

CODE_ROOTS = ("advinterp", "stages")
# Modules that cannot change what a stage writes: exception types (messages only) and
# progress display. Every other imported module must be a dep.
NOT_RESULTS = {"advinterp/errors.py", "advinterp/progress.py"}

# One interpreter imports every stage in turn: third-party packages stay loaded, the
# repository's modules are dropped between stages so each stage's set is complete.
_PROBE = """
import importlib, json, sys
from pathlib import Path
root = Path(sys.argv[1]).resolve()
CODE_ROOTS = tuple(sys.argv[2].split(","))
import torch, torchvision, zarr, numpy, pandas, matplotlib  # noqa: F401 (warm, shared)

def ours():
    out = {}
    for name, mod in list(sys.modules.items()):
        f = getattr(mod, "__file__", None)
        if f and name.split(".")[0] in CODE_ROOTS:
            out[name] = Path(f).resolve().relative_to(root).as_posix()
    return out

result = {}
for stage in sys.argv[3:]:
    for name in ours():
        del sys.modules[name]
    importlib.import_module(f"stages.{stage}")
    result[stage] = sorted(set(ours().values()))
print(json.dumps(result))
"""


def _stages() -> dict[str, dict]:
    return yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]


@pytest.fixture(scope="module")
def imported() -> dict[str, list[str]]:
    proc = subprocess.run(
        [sys.executable, "-c", _PROBE, str(ROOT), ",".join(CODE_ROOTS), *_stages()],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=600,
    )
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _code_deps(stage: dict) -> list[str]:
    return [d for d in stage.get("deps", []) if d.split("/")[0] in CODE_ROOTS]


def _covered(path: str, deps: list[str]) -> bool:
    return any(path == d or path.startswith(d.rstrip("/") + "/") for d in deps)


@pytest.mark.parametrize("name", sorted(_stages()))
def test_every_imported_module_is_a_dep(name, imported):
    deps = _code_deps(_stages()[name])
    files = [f for f in imported[name] if not f.endswith("__init__.py") and f not in NOT_RESULTS]
    missing = [f for f in files if not _covered(f, deps)]
    assert not missing, f"dvc.yaml stage {name} imports but does not depend on {missing}"


@pytest.mark.parametrize("name", sorted(_stages()))
def test_every_code_file_dep_is_imported(name, imported):
    used = set(imported[name])
    unused = [d for d in _code_deps(_stages()[name]) if d.endswith(".py") and d not in used]
    assert not unused, f"dvc.yaml stage {name} depends on {unused} but never imports them"
