"""docs/adding-a-method.md works as written: five files, then dvc repro and the flow.

The guide's code blocks are the test's input: each block under a ``<!-- file: path -->``
marker is written to that path of a scratch copy of the pipeline (``file+:`` appends),
dvc.yaml is regenerated, and the new stage runs through a real ``dvc repro`` and a real
Prefect flow run.
"""

from __future__ import annotations

import json
import re
import sys

import pytest

from tests.conftest import ROOT, run

GUIDE = ROOT / "docs" / "adding-a-method.md"
BLOCK = re.compile(r"<!-- (file\+?): (\S+) -->\n```\w*\n(.*?)```", re.S)


def guide_files() -> list[tuple[str, str, str]]:
    """(mode, path, text) of every marked code block, in order."""
    return BLOCK.findall(GUIDE.read_text())


def test_the_guide_marks_the_four_files_it_lists():
    paths = [p for _, p, _ in guide_files()]
    assert paths == [
        "advinterp/config/grad_energy.py",
        "advinterp/analysis/grad_energy.py",
        "stages/grad_energy.py",
        "params.yaml",
    ]


def test_the_library_function_matches_a_hand_computation():
    """The example's science, checked the way the guide asks new methods to be."""
    import numpy as np
    import torch
    from torch import nn

    namespace: dict = {}
    exec(guide_files()[1][2], namespace)  # the guide's library module, as printed
    model = nn.Sequential(nn.Flatten(), nn.Linear(2, 2, bias=False))
    with torch.no_grad():
        model[1].weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 0.0]]))
    x = torch.zeros(1, 1, 1, 2)  # logits (0, 0): p = (1/2, 1/2)
    # d log p0 / dx = W0 - sum_k p_k W_k = (1, 0) - (1/2)(1, 0) = (1/2, 0): mean |.| = 1/4
    got = namespace["gradient_energy"](model, x, torch.tensor([0]), batch_size=4)
    assert got.tolist() == [0.25]
    means = namespace["per_class_mean"](np.array([1.0, 3.0, 5.0]), np.array([0, 0, 2]), 3)
    assert means[0] == 2.0 and np.isnan(means[1]) and means[2] == 5.0


@pytest.mark.slow
def test_a_sixth_method_in_five_files_runs_through_dvc_and_the_flow(pipeline_repo):
    for mode, path, text in guide_files():
        target = pipeline_repo / path
        target.parent.mkdir(parents=True, exist_ok=True)
        with target.open("a" if mode == "file+" else "w") as f:
            f.write(text)
    run([sys.executable, "-m", "flows.generate", "dvc-yaml"], pipeline_repo)

    changed = run(["git", "status", "--porcelain"], pipeline_repo).stdout.splitlines()
    assert sorted(line[3:] for line in changed) == [
        "advinterp/analysis/grad_energy.py",
        "advinterp/config/grad_energy.py",
        "dvc.yaml",
        "params.yaml",
        "stages/grad_energy.py",
    ]
    dvc_yaml = (pipeline_repo / "dvc.yaml").read_text()
    assert "advinterp/analysis/grad_energy.py" in dvc_yaml  # a real code dep

    repro = run([sys.executable, "-m", "dvc", "repro", "grad_energy"], pipeline_repo)
    assert "Running stage 'grad_energy'" in repro.stdout
    result = json.loads((pipeline_repo / "artifacts/grad_energy/metrics.json").read_text())
    assert result["mean_energy"] > 0 and result["images"] >= 1
    status = run([sys.executable, "-m", "dvc", "status", "grad_energy"], pipeline_repo).stdout
    assert "changed" not in status

    flow = run([sys.executable, "-c", _FLOW, str(pipeline_repo)], pipeline_repo)
    outcomes = dict(line.split("=", 1) for line in flow.stdout.split() if "=" in line)
    assert outcomes["grad_energy"] == "skipped" and outcomes["train"] == "skipped"

    # The method's own library module is a dep of its stage and of nothing else (the
    # scratch repo never ran the other methods, so they are stale before and after).
    def stale() -> set[str]:
        out = run([sys.executable, "-m", "dvc", "status", "--json"], pipeline_repo).stdout
        return set(json.loads(out))

    before = stale()
    assert {"dataset", "train", "grad_energy"}.isdisjoint(before)
    lib = pipeline_repo / "advinterp/analysis/grad_energy.py"
    lib.write_text(lib.read_text() + "\n# an edit\n")
    assert stale() - before == {"grad_energy"}


# The flow runs in a temporary Prefect server of its own, as a user's first run would.
_FLOW = """
import os, sys
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
from prefect.testing.utilities import prefect_test_harness
from flows.pipeline import pipeline
with prefect_test_harness(server_startup_timeout=120):
    results = pipeline(repo=sys.argv[1], targets=["grad_energy"])
print(" ".join(f"{r.name}={r.outcome}" for r in results))
"""
