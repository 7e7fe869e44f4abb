"""bench.edit_cost's bookkeeping on hand-computed DAGs, and its edits against the
repository's own params.yaml and dvc.yaml files (no DVC, no clone)."""

from __future__ import annotations

import pytest
import yaml

from bench import edit_cost as ec
from bench.__main__ import BENCHMARKS
from tests.conftest import ROOT

#   a (1 s) -> b (2 s) -> d (4 s)
#   a       -> c (5 s) -> d
DAG = [
    ec.Run("a", (), frozenset({"src/a.py"}), frozenset({"out/a.zarr"})),
    ec.Run("b@0", ("a",), frozenset({"out/a.zarr"}), frozenset({"out/b/x.csv", "out/b/fig.png"})),
    ec.Run("c", ("a",), frozenset({"out/a.zarr/part"}), frozenset({"out/c.json"})),
    ec.Run("d", ("b@0", "c"), frozenset({"out/b/fig.png", "out/c.json"}), frozenset({"out/d"})),
]
SECONDS = {"a": 1.0, "b@0": 2.0, "c": 5.0, "d": 4.0}


def test_registered_before_pipeline():
    assert BENCHMARKS.index("edit_cost") < BENCHMARKS.index("pipeline")


def test_a_stale_run_whose_output_cannot_change_stops_there():
    assert ec.reruns(DAG, {"a"}, {}) == ["a"]
    # a changes: its readers (c reads inside a's directory) rerun, c's output does not change
    assert ec.reruns(DAG, {"a"}, {"a": None, "b": None}) == ["a", "b@0", "c", "d"]
    assert ec.reruns(DAG, {"a"}, {"a": None}) == ["a", "b@0", "c"]


def test_only_the_declared_outputs_propagate():
    assert ec.reruns(DAG, {"b@0"}, {"b": ("x.csv",)}) == ["b@0"]
    assert ec.reruns(DAG, {"b@0"}, {"b": ("fig.png",)}) == ["b@0", "d"]


def test_minimum_checks_its_declaration():
    assert ec.minimum(DAG, {"b": ("fig.png",), "d": None}) == ["b@0", "d"]
    assert ec.minimum(DAG, {"b@0": None}) == ["b@0"]  # one run by its own name
    assert ec.reruns(DAG, {"b@0"}, {"b@0": ("fig.png",)}) == ["b@0", "d"]
    with pytest.raises(ValueError, match="not in the DAG"):
        ec.minimum(DAG, {"e": None})
    with pytest.raises(ValueError, match="no outputs named"):
        ec.minimum(DAG, {"b": ("nope.png",)})


def test_critical_path_and_schedule():
    assert ec.critical_path(DAG, SECONDS) == (10.0, ["a", "c", "d"])
    assert ec.schedule(DAG, SECONDS, 1) == sum(SECONDS.values())
    assert ec.schedule(DAG, SECONDS, 2) == 10.0  # b and c side by side, then d
    assert ec.schedule(DAG, SECONDS, 8) == 10.0


def test_set_param_changes_one_line_of_its_section():
    text = "a:\n  eps: [0.1]  # kept\n  n: 3\nb:\n  eps: [0.1]\n"
    new = ec.set_param(text, "b", "eps", lambda v: [*v, 0.2])
    assert new == "a:\n  eps: [0.1]  # kept\n  n: 3\nb:\n  eps: [0.1, 0.2]\n"
    assert ec.set_param(text, "a", "n", lambda v: v * 2).splitlines()[2] == "  n: 6"
    with pytest.raises(KeyError):
        ec.set_param(text, "b", "n", lambda v: v)


def _declared_dag(params: dict) -> list[ec.Run]:
    """Runs and output names of the repository's dvc.yaml files, without DVC: a seeded
    stage as one run (the ``@item`` suffix dropped: a key of Edit.changes names every
    item), a unit stage once per value of its list in ``params`` (the default profile's)."""
    runs = []
    for path, prefix in (("dvc.yaml", ""), ("profiles/digits/dvc.yaml", ec.DIGITS)):
        for name, stage in yaml.safe_load((ROOT / path).read_text())["stages"].items():
            body = stage.get("do", stage)
            outs = [
                next(iter(o)) if isinstance(o, dict) else o
                for kind in ("outs", "metrics", "plots")
                for o in body.get(kind, [])
            ]
            each = stage.get("foreach")
            if not isinstance(each, str):
                runs.append(ec.Run(prefix + name, (), frozenset(), frozenset(outs)))
                continue
            section, key = each.strip("${}").split(".")
            for v in params[section][key]:
                made = frozenset(o.replace("${item}", str(v)) for o in outs)
                runs.append(ec.Run(f"{prefix}{name}@{v}", (), frozenset(), made))
    return runs


@pytest.mark.parametrize("edit", ec.EDITS, ids=lambda e: e.name)
def test_each_edit_applies_to_this_repository(edit):
    before = (ROOT / edit.file).read_text()
    after = edit.change(before)
    assert after != before
    params = (ROOT / "params.yaml").read_text()
    if edit.file.endswith(".yaml"):
        assert yaml.safe_load(after) != yaml.safe_load(before)
        params = after if edit.file == "params.yaml" else params
    assert ec.minimum(_declared_dag(yaml.safe_load(params)), edit.changes)


def test_six_edits_named_in_the_issue():
    assert len(ec.EDITS) >= 6
    assert ec.EDITS[0].name == ec.ADD_EPS


def test_a_run_an_edit_adds_takes_the_seconds_of_its_stages_run_at_head():
    # adding a value to a unit stage's list adds the run u@2; u@1 did the same work
    dag = [ec.Run("u@1", (), frozenset(), frozenset({"o/u_1"}))]
    added = ec.Measured(ec.EDITS[1], ["u@2"], ["u@2", "r"], ["u@2"], ["u@2", "r"])
    assert ec.added_runs([added], dag, {"u@1": 30.0, "r": 5.0}) == {"u@2": 30.0}


def test_a_missing_run_is_put_at_the_reference_runs_pace():
    wall, cpu = {"new": 300.0, ec.REFERENCE: 200.0}, {"new": 200.0, ec.REFERENCE: 100.0}
    timed = ec.Timed(wall, cpu, 50.0, load=8.0)
    assert timed.seconds == {"new": 100.0}  # 200 CPU s at 50 s per 100 CPU s
    assert "new ≈ 100 s (by wall instead 75 s" in timed.note(["new", "other"])
    assert timed.note(["other"]) == ""
