"""dvc.yaml is generated from the stage declarations, and the generator is right.

* The committed dvc.yaml is exactly what ``python -m flows.generate dvc-yaml`` writes (drift).
* :mod:`stages.stage` and :mod:`flows.generate` on small declarations built here: the
  command line, ``StageIO``, ``run``, the DAG order and its errors, each dvc.yaml entry.
* The import probe behind each stage's code deps: no stage module imports another.
"""

from __future__ import annotations

import argparse
import difflib
import importlib
import logging
import sys
from pathlib import Path

import pytest
import torch
import yaml

import flows.generate as gen
from advinterp.config.core import SHARED, Method, ProfileConfig, ScaleConfig
from advinterp.config.features import FeaturesConfig
from advinterp.config.train import TrainConfig
from advinterp.errors import ParamError
from flows.dvc_dag import address
from stages.stage import (
    Curve,
    Keys,
    Output,
    Stage,
    StageIO,
    Unit,
    figure,
    metrics,
    out,
    plot,
    run,
    table,
)
from tests.conftest import ROOT

FIRST = Method("first", "First method", "A. Author et al., A paper, 2020", order=1)
SECOND = Method("second", "Second method", "B. Author et al., Another paper, 2021", order=2)


def stage(name: str, method: Method = FIRST, **kw) -> Stage:
    """A declaration with no params unless given (``base=()``), for the DAG tests."""
    kw.setdefault("base", ())
    return Stage(name=name, method=method, desc=f"the {name} stage", **kw)


def names(ordered: list[Stage]) -> list[str]:
    return [s.name for s in ordered]


# -- drift ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def generated() -> dict[str, str]:
    """Every profile's dvc.yaml as ``python -m flows.generate dvc-yaml`` writes it (the
    import probe: seconds)."""
    return gen.generate_all()


def test_committed_dvc_yaml_files_are_the_generated_ones(generated):
    assert set(generated) == {"dvc.yaml", "profiles/digits/dvc.yaml"}
    for rel, text in generated.items():
        committed = (ROOT / rel).read_text()
        diff = "\n".join(
            difflib.unified_diff(committed.splitlines(), text.splitlines(), rel, "generated", lineterm="")
        )  # fmt: skip
        assert committed == text, f"run `python -m flows.generate dvc-yaml`:\n{diff}"


def test_dvc_loads_the_generated_dvc_yaml_files(generated, tmp_path):
    """DVC accepts every stage, every dep and every output of the generated files."""
    from dvc.repo import Repo

    Repo.init(str(tmp_path), no_scm=True)
    for rel, text in generated.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text)
        params = Path(rel).parent / "params.yaml"
        (tmp_path / params).write_text((ROOT / params).read_text())
    with Repo(str(tmp_path)) as repo:
        loaded: dict[str, set[str]] = {}
        for s in repo.index.stages:
            loaded.setdefault(s.path_in_repo, set()).add(s.name)
    declared = {s.name for s in gen.declarations()}
    expected: dict[str, set[str]] = {}
    for at, _ in gen.instances(gen.load_profiles(), gen.declarations()):
        rel, _, name = at.rpartition(":")
        expected.setdefault(rel or "dvc.yaml", set()).add(name)
    assert loaded == expected
    # Seeded stages once per seed, unit stages once per value of their list param.
    assert "adv_train@0.02" in loaded["dvc.yaml"] and "sje@0" in loaded["dvc.yaml"]
    assert {n.split("@")[0] for names in loaded.values() for n in names} <= declared


def test_dvc_yaml_check_exits_1_on_drift_and_writes_without_check(tmp_path, monkeypatch):
    files = {"dvc.yaml": "stages: {}\n", "profiles/p/dvc.yaml": "stages: {x: {}}\n"}
    monkeypatch.setattr(gen, "generate_all", lambda root: files)
    (tmp_path / "profiles/p").mkdir(parents=True)
    target = tmp_path / "dvc.yaml"
    target.write_text("stages: {old: {}}\n")
    assert gen.main(["dvc-yaml", "--check", "--root", str(tmp_path)]) == 1
    assert target.read_text() == "stages: {old: {}}\n"  # --check writes nothing
    assert gen.main(["dvc-yaml", "--root", str(tmp_path)]) == 0
    assert target.read_text() == "stages: {}\n"
    assert (tmp_path / "profiles/p/dvc.yaml").read_text() == "stages: {x: {}}\n"
    assert gen.main(["dvc-yaml", "--check", "--root", str(tmp_path)]) == 0


# -- stages/stage.py: the declaration and its command line ------------------------------

TRAIN_LIKE = Stage(
    "fit",
    SHARED,
    "fit a model",
    {"dataset": "data/dataset.zarr"},
    {
        "second_model": out("artifacts/fit/second.pt"),
        "metrics": metrics("artifacts/fit/metrics.json"),
    },
    sources={"dvc_yaml": "dvc.yaml"},
    configs=(TrainConfig,),
    runtime=(ScaleConfig,),
)


def test_parser_defaults_are_the_declared_paths():
    args = TRAIN_LIKE.parser().parse_args([])
    assert args.params == Path("params.yaml")
    assert args.dataset == Path("data/dataset.zarr")
    assert args.dvc_yaml == Path("dvc.yaml")
    assert args.second_model == Path("artifacts/fit/second.pt")  # --second-model
    assert args.metrics == Path("artifacts/fit/metrics.json")
    given = TRAIN_LIKE.parser().parse_args(["--second-model", "x.pt", "--params", "p.yaml"])
    assert given.second_model == Path("x.pt") and given.params == Path("p.yaml")
    assert given.dataset == Path("data/dataset.zarr")


def test_argv_gives_flags_in_declared_order_and_round_trips():
    assert TRAIN_LIKE.argv() == [
        "--dataset",
        "data/dataset.zarr",
        "--dvc-yaml",
        "dvc.yaml",
        "--second-model",
        "artifacts/fit/second.pt",
        "--metrics",
        "artifacts/fit/metrics.json",
    ]
    assert TRAIN_LIKE.argv({"second_model": "/tmp/s.pt"}) == ["--second-model", "/tmp/s.pt"]
    parsed = vars(TRAIN_LIKE.parser().parse_args(TRAIN_LIKE.argv({"dataset": "d.zarr"})))
    assert parsed["dataset"] == Path("d.zarr")
    assert parsed["metrics"] == Path("artifacts/fit/metrics.json")


def test_params_are_base_keys_then_sections_and_never_runtime():
    assert TRAIN_LIKE.params == ["base.seed", "base.device", "base.num_threads", "train"]
    assert TRAIN_LIKE.models == (TrainConfig, ScaleConfig)
    assert stage("plain").params == []
    assert stage("chunked", base=("seed", "chunk_size")).params == ["base.seed", "base.chunk_size"]
    some = stage("some", configs=(FeaturesConfig, Keys(TrainConfig, ("arch", "epochs"))))
    assert some.params == ["features", "train.arch", "train.epochs"]
    assert some.models == (FeaturesConfig, TrainConfig)


def test_a_flag_declared_twice_or_an_unknown_base_key_is_refused():
    with pytest.raises(ValueError, match="share a flag"):
        stage("a", inputs={"model": "m.pt"}, outputs={"model": out("n.pt")})
    with pytest.raises(ValueError, match="share a flag"):
        stage("a", sources={"model": "m.pt"}, outputs={"model": out("n.pt")})
    with pytest.raises(ValueError, match="unknown base keys"):
        stage("a", base=("seed", "lr"))


def test_output_kinds_and_caching():
    assert [o.kind for o in (out("a"), metrics("b"), plot("c"), figure("d"), table("e"))] == [
        "out",
        "metrics",
        "plot",
        "figure",
        "table",
    ]
    assert [o.cached for o in (out("a"), metrics("b"), plot("c"), figure("d"), table("e"))] == [
        True,
        False,
        False,
        False,
        False,
    ]
    assert plot("h.csv", Curve("t", "x", ["y"])).curves == (Curve("t", "x", ["y"]),)


# -- StageIO and run ----------------------------------------------------------------------


def _io(tmp_path: Path, declared: Stage, params: dict) -> StageIO:
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(params))
    return StageIO(declared, declared.parser().parse_args(["--params", str(path)]))


def test_stage_io_gives_paths_and_declared_sections_only(tmp_path):
    io = _io(tmp_path, TRAIN_LIKE, {"train": {"epochs": 3}, "scale": {}, "base": {"seed": 4}})
    assert io.dataset == Path("data/dataset.zarr")
    assert io.second_model == Path("artifacts/fit/second.pt")
    with pytest.raises(AttributeError, match="declares no input or output 'model'"):
        _ = io.model
    assert io.config(TrainConfig).epochs == 3
    assert io.config(ScaleConfig).executor == "local"  # runtime sections may be read
    assert io.base.seed == 4
    with pytest.raises(TypeError, match="does not declare it"):
        io.config(FeaturesConfig)  # valid in the file, but not declared
    with pytest.raises(ParamError, match="section 'train' is missing"):
        _io(tmp_path, TRAIN_LIKE, {"scale": {}}).config(TrainConfig)
    some = stage("some", configs=(Keys(TrainConfig, ("epochs",)),))
    assert _io(tmp_path, some, {"train": {"epochs": 2}}).config(TrainConfig).epochs == 2


def _run(monkeypatch, tmp_path, declared: Stage, main, params: dict) -> int:
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(params))
    monkeypatch.setattr(sys, "argv", ["prog", "--params", str(path)])
    try:
        run(declared, main)
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0


def test_run_seeds_from_base_before_main(monkeypatch, tmp_path):
    seen = []
    seeded = stage("seeded", base=("seed",))  # num_threads 0: torch's threads unchanged
    code = _run(
        monkeypatch, tmp_path, seeded, lambda io: seen.append(torch.rand(3)), {"base": {"seed": 7}}
    )
    assert code == 0
    torch.manual_seed(7)
    assert torch.equal(seen[0], torch.rand(3))


def test_run_turns_input_errors_into_exit_2_and_one_line(monkeypatch, tmp_path, caplog):
    def main(io):
        raise ParamError("params.yaml: train.epochs: must be >= 1")

    with caplog.at_level(logging.ERROR, logger="advinterp.stage"):
        code = _run(monkeypatch, tmp_path, stage("failing"), main, {})
    assert code == 2
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == [
        "params.yaml: train.epochs: must be >= 1"
    ]
    # A bug is not an input error: it keeps its traceback.
    with pytest.raises(ZeroDivisionError):
        _run(monkeypatch, tmp_path, stage("buggy"), lambda io: 1 / 0, {})


# -- flows/generate.py: the DAG ----------------------------------------------------------


def test_dag_order_puts_upstream_first():
    a = stage("a", outputs={"out": out("x.zarr")})
    b = stage("b", inputs={"x": "x.zarr"}, outputs={"out": out("y.zarr")})
    c = stage("c", inputs={"y": "y.zarr", "x": "x.zarr"})
    assert names(gen.dag_order([c, b, a])) == ["a", "b", "c"]
    assert gen.upstream(c, gen.producers([a, b, c])) == {"a", "b"}


def test_an_input_inside_an_output_directory_is_read_from_its_producer():
    a = stage("a", outputs={"models": out("artifacts/a/models")})
    b = stage("b", inputs={"model": "artifacts/a/models/at_0.06.pt"})
    c = stage("c", inputs={"model": "artifacts/a/models_old/m.pt"}, outputs={})
    assert gen.upstream(b, gen.producers([a, b])) == {"a"}
    with pytest.raises(ValueError, match="is no stage's output"):
        gen.upstream(c, gen.producers([a, c]))  # a sibling with a common prefix is not inside


def test_ready_stages_come_in_method_order_then_by_name():
    z = stage("z", FIRST)
    y = stage("y", SECOND)
    a = stage("a", SECOND)
    shared = stage("m", SHARED)
    assert names(gen.dag_order([a, y, z, shared])) == ["m", "z", "a", "y"]


def test_a_gathering_stage_comes_after_every_other():
    report = stage("report", SHARED, gathers=True)
    later = stage("later", SECOND, outputs={"m": metrics("m.json")})
    assert names(gen.dag_order([report, later])) == ["later", "report"]


def test_a_cycle_is_an_error():
    a = stage("a", inputs={"y": "y"}, outputs={"x": out("x")})
    b = stage("b", inputs={"x": "x"}, outputs={"y": out("y")})
    ok = stage("ok", outputs={"z": out("z")})
    with pytest.raises(ValueError, match=r"cycle among \['a', 'b'\]"):
        gen.dag_order([a, b, ok])


def test_an_input_no_stage_writes_is_an_error():
    with pytest.raises(ValueError, match="stage b: input nowhere.zarr is no stage's output"):
        gen.dag_order(
            [stage("a", outputs={"x": out("x")}), stage("b", inputs={"n": "nowhere.zarr"})]
        )


def test_two_stages_writing_one_path_is_an_error():
    a = stage("a", outputs={"x": out("same.zarr")})
    b = stage("b", outputs={"y": metrics("same.zarr")})
    with pytest.raises(ValueError, match="same.zarr is written by both a and b"):
        gen.dag_order([a, b])


# -- flows/generate.py: the entries of dvc.yaml --------------------------------------------


def every_kind(folder: str) -> dict[str, Output]:
    """One output of each kind, under ``folder``."""
    return {
        "out": out(f"{folder}/store.zarr"),
        "table": table(f"{folder}/table.csv"),
        "metrics": metrics(f"{folder}/metrics.json"),
        "history": plot(f"{folder}/history.csv", Curve("t", "epoch", ["loss"])),
        "figure": figure(f"{folder}/figure.png"),
    }


def test_stage_entry_sorts_each_output_kind_into_its_dvc_key():
    s = Stage(
        name="kinds",
        method=FIRST,
        desc="every kind of output",
        inputs={"dataset": "data/dataset.zarr"},
        sources={"dvc_yaml": "dvc.yaml"},
        outputs=every_kind("artifacts/kinds"),
        configs=(TrainConfig,),
        base=("seed",),
    )
    entry = gen.stage_entry(s, ["stages/kinds.py", "advinterp/x.py"], [])
    assert entry["desc"] == "every kind of output"
    assert entry["cmd"] == "python -m stages.kinds " + " ".join(s.argv())
    # Sources are read, never deps: DVC refuses dvc.yaml as a dependency.
    assert entry["deps"] == ["stages/kinds.py", "advinterp/x.py", "data/dataset.zarr"]
    assert entry["params"] == ["base.seed", "train"]
    assert entry["outs"] == [
        "artifacts/kinds/store.zarr",
        {"artifacts/kinds/table.csv": {"cache": False}},
    ]
    assert entry["metrics"] == [{"artifacts/kinds/metrics.json": {"cache": False}}]
    assert entry["plots"] == [
        {"artifacts/kinds/history.csv": {"cache": False}},
        {"artifacts/kinds/figure.png": {"cache": False}},
    ]
    assert entry["meta"]["method"] == "first"


def test_stage_entry_leaves_out_empty_keys():
    entry = gen.stage_entry(stage("bare", outputs={"out": out("o.zarr")}), ["stages/bare.py"], [])
    assert "params" not in entry and "metrics" not in entry and "plots" not in entry
    assert entry["outs"] == ["o.zarr"]


def test_plot_entries_for_list_and_dict_y():
    s = stage(
        "curves",
        outputs={
            "history": plot("a/history.csv", Curve("Training", "epoch", ["acc", "loss"])),
            "curves": plot(
                "a/curves",
                Curve("Targeted", "eps", ["sje"], file="targeted.csv"),
                Curve("ROC", "fpr", {"fgsm.csv": "tpr", "cw.csv": "tpr"}, name="roc"),
                Curve("Unnamed", "fpr", {"x.csv": "tpr"}),
            ),
        },
    )
    assert gen.plot_entries([s]) == [
        {"a/history.csv": {"x": "epoch", "y": ["acc", "loss"], "title": "Training"}},
        {"a/curves/targeted.csv": {"x": "eps", "y": ["sje"], "title": "Targeted"}},
        {"roc": {"x": "fpr", "y": {"a/curves/fgsm.csv": "tpr", "a/curves/cw.csv": "tpr"},
                 "title": "ROC"}},
        {"curves_curves": {"x": "fpr", "y": {"a/curves/x.csv": "tpr"}, "title": "Unnamed"}},
    ]  # fmt: skip


def test_a_gathering_stage_depends_on_every_other_stages_results():
    a = stage(
        "a",
        outputs=every_kind("a"),
    )
    b = stage("b", SECOND, inputs={"x": "a/store.zarr"}, outputs={"m": metrics("b/m.json")})
    report = stage("report", SHARED, sources={"dvc_yaml": "dvc.yaml"}, gathers=True,
                   outputs={"out": out("report/index.html")})  # fmt: skip
    ordered = gen.dag_order([report, b, a])
    deps = {s.name: [f"stages/{s.name}.py"] for s in ordered}
    text = gen.render(ordered, deps)
    assert text.startswith(gen.HEADER)
    doc = yaml.safe_load(text)
    assert list(doc["stages"]) == ["a", "b", "report"]
    # dvc.yaml is the report's source, but DVC refuses its own stage file as a dep.
    assert doc["stages"]["report"]["deps"] == [
        "stages/report.py",
        "a/metrics.json",
        "a/history.csv",
        "a/figure.png",
        "b/m.json",
    ]
    assert doc["stages"]["report"]["meta"]["gathers"] is True
    assert doc["stages"]["b"]["deps"] == ["stages/b.py", "a/store.zarr"]
    assert doc["plots"] == [{"a/history.csv": {"x": "epoch", "y": ["loss"], "title": "t"}}]


# -- declarations() on a package built here -----------------------------------------------

_MODULE = """
from advinterp.config.core import SHARED
from stages.stage import Stage, out

STAGE = Stage(name="{name}", method=SHARED, desc="d", base=(), {body})
"""


def _package(tmp_path: Path, monkeypatch, modules: dict[str, str]) -> str:
    """A package of stage modules under a fresh name; returns the name."""
    name = f"pkg_{tmp_path.name.replace('-', '_')}"
    pkg = tmp_path / name
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "stage.py").write_text("")  # the declaration module itself is not a stage
    for module, text in modules.items():
        (pkg / f"{module}.py").write_text(text)
    monkeypatch.syspath_prepend(str(tmp_path))
    importlib.invalidate_caches()
    return name


def test_declarations_finds_every_module_stage_in_dag_order(tmp_path, monkeypatch):
    pkg = _package(
        tmp_path,
        monkeypatch,
        {
            "late": _MODULE.format(name="late", body='inputs={"x": "x.zarr"}'),
            "early": _MODULE.format(name="early", body='outputs={"x": out("x.zarr")}'),
        },
    )
    assert names(gen.declarations(pkg)) == ["early", "late"]


@pytest.mark.parametrize(
    "text,error",
    [
        ("X = 1\n", "no STAGE declaration"),
        (_MODULE.format(name="other", body=""), "declares stage 'other'"),
    ],
)
def test_declarations_refuses_a_module_without_its_own_stage(tmp_path, monkeypatch, text, error):
    pkg = _package(tmp_path, monkeypatch, {"broken": text})
    with pytest.raises(ValueError, match=error):
        gen.declarations(pkg)


# -- the import probe: stages import only the library and stages/stage.py -----------------


def test_no_stage_module_imports_another():
    deps = gen.code_deps([s.name for s in gen.declarations()])
    for name, files in deps.items():
        assert f"stages/{name}.py" in files, name
        others = [f for f in files if f.startswith("stages/")]
        assert sorted(others) == sorted({f"stages/{name}.py", "stages/stage.py"}), (
            f"stages/{name}.py imports {sorted(set(others) - {f'stages/{name}.py'})}"
        )
        assert not {"advinterp/errors.py", "advinterp/progress.py"} & set(files)


def test_argparse_namespace_of_a_stage_has_every_flag():
    """StageIO reads every declared flag from the parsed namespace (none forgotten)."""
    ns = TRAIN_LIKE.parser().parse_args([])
    assert isinstance(ns, argparse.Namespace)
    assert set(vars(ns)) == {"params", "seed", *TRAIN_LIKE.paths()}


# -- what the generated code deps promise -------------------------------------------------

METHOD_CONFIGS = ("attributes", "localized", "lan", "a2e", "igan")


def _committed_stages() -> dict[str, dict]:
    """Every profile's stages (``profile:name``), a seeded stage's ``foreach`` body unwrapped."""
    found = {}
    for rel in ("dvc.yaml", "profiles/digits/dvc.yaml"):
        for name, spec in yaml.safe_load((ROOT / rel).read_text())["stages"].items():
            found[f"{rel}:{name}"] = spec.get("do", spec)
    return found


@pytest.mark.parametrize("method", METHOD_CONFIGS)
def test_a_method_config_module_is_a_dep_of_that_methods_stages_only(method):
    stages = _committed_stages()
    users = {n for n, s in stages.items() if f"advinterp/config/{method}.py" in s["deps"]}
    own = {n for n, s in stages.items() if s["meta"]["method"] == method}
    # the comparison reads each method's own section (how it explains), and validate the
    # keys of each that must fit the dataset (class choices, budgets), by design
    compare = {n for n, s in stages.items() if s["meta"]["method"] == "comparison"}
    compare |= {n for n in stages if n.endswith(":validate")}
    assert users - compare == own, (
        f"config/{method}.py reruns {sorted(users - own)} outside its method"
    )


def test_each_figure_module_is_a_dep_of_the_one_stage_that_draws_it():
    stages = _committed_stages()
    figure_modules = sorted(
        p.relative_to(ROOT).as_posix()
        for p in (ROOT / "advinterp").rglob("*figures.py")
        if p.name != "figures.py"  # save_figure: shared writing, no drawing
    )
    assert figure_modules
    for module in figure_modules:
        # One stage per profile: the same stage run on the birds and on the digits.
        users = {n.split(":")[1] for n, s in stages.items() if module in s["deps"]}
        assert len(users) == 1, f"{module} is drawn by {users}: editing it reruns them all"


# -- profiles: stages once per seed, and params files beside the default -------------------


def _profile(params: str, name: str, seeds=(0, 1, 2), seeded=(), stages=None) -> gen.Profile:
    cfg = ProfileConfig(name=name, seeds=seeds, seeded=seeded, stages=stages)
    return gen.Profile(params, cfg)


def _seeded_world() -> tuple[list[Stage], list[gen.Profile]]:
    """data -> fit (seeded) -> use; gather reads every seed of fit, here and in 'small'."""
    data = stage("data", outputs={"out": out("data/d.zarr")})
    fit = stage(
        "fit",
        base=("seed", "device"),
        inputs={"d": "data/d.zarr"},
        outputs={"model": out("artifacts/fit/model.pt"), "m": metrics("artifacts/fit/m.json")},
    )
    use = stage(
        "use",
        inputs={"model": "artifacts/fit/model.pt", "extra": "artifacts/gather/t.json"},
        optional=("extra",),
        outputs={"m": metrics("artifacts/use/m.json")},
    )
    gather = stage(
        "gather",
        SECOND,
        inputs={"m": "artifacts/fit/m.json", "other": "artifacts/small/fit/m.json"},
        per_seed=("m", "other"),
        outputs={"t": table("artifacts/gather/t.json")},
    )
    stages = gen.dag_order([data, fit, use, gather], others=("small",))
    profiles = [
        _profile("params.yaml", "default", seeded=("fit",), stages=("data", "fit", "gather")),
        _profile("profiles/small/params.yaml", "small", (5, 6), ("fit", "use"), ("data", "fit", "use")),
    ]  # fmt: skip
    return stages, profiles


def _rendered() -> dict[str, dict]:
    stages, profiles = _seeded_world()
    code = {s.name: [f"stages/{s.name}.py"] for s in stages}
    made = gen.made_by(profiles, stages)
    return {p.dvc_yaml: yaml.safe_load(gen.render_profile(p, stages, code, made)) for p in profiles}


def test_a_seeded_stage_runs_once_per_seed_with_its_seed_on_the_command_line():
    fit = _rendered()["dvc.yaml"]["stages"]["fit"]
    assert fit["foreach"] == [0, 1, 2]
    body = fit["do"]
    assert "--seed ${item}" in body["cmd"]
    assert "--model artifacts/fit/seed_${item}/model.pt" in body["cmd"]
    assert body["outs"] == ["artifacts/fit/seed_${item}/model.pt"]
    # The seed comes from the command line: base.seed is no param of a seeded stage.
    assert body["params"] == ["base.device"]


def test_a_per_seed_input_reads_every_seed_and_depends_on_each():
    gather = _rendered()["dvc.yaml"]["stages"]["gather"]
    assert "--m artifacts/fit/seed_0,1,2/m.json" in gather["cmd"]
    assert "--other artifacts/small/fit/seed_5,6/m.json" in gather["cmd"]
    assert gather["deps"] == [
        "stages/gather.py",
        *(f"artifacts/fit/seed_{s}/m.json" for s in (0, 1, 2)),
        *(f"artifacts/small/fit/seed_{s}/m.json" for s in (5, 6)),
    ]


def test_another_profile_writes_under_its_name_from_its_own_params_file():
    small = _rendered()["profiles/small/dvc.yaml"]["stages"]
    assert "plots" not in small
    data = small["data"]
    assert data["wdir"] == "../.."  # every path stays relative to the repository root
    assert (
        data["cmd"]
        == "python -m stages.data --params profiles/small/params.yaml --out data/small/d.zarr"
    )
    fit = small["fit"]["do"]
    assert fit["params"] == [{"profiles/small/params.yaml": ["base.device"]}]
    assert "--d data/small/d.zarr" in fit["cmd"]
    # A seeded consumer of a seeded stage reads the same seed.
    use = small["use"]["do"]
    assert "--model artifacts/small/fit/seed_${item}/model.pt" in use["cmd"]
    # An optional input no stage of the profile writes is passed as absent, no dep.
    assert "--extra -" in use["cmd"]
    assert "artifacts/gather/t.json" not in use["deps"]


def test_an_unseeded_consumer_reads_the_first_seed():
    stages, profiles = _seeded_world()
    default = _profile("params.yaml", "default", seeded=("fit",))
    code = {s.name: [] for s in stages}
    made = gen.made_by([default, profiles[1]], stages)
    use = yaml.safe_load(gen.render_profile(default, stages, code, made))["stages"]["use"]
    assert "--model artifacts/fit/seed_0/model.pt" in use["cmd"]
    assert "--extra artifacts/gather/t.json" in use["cmd"]  # present here: a real input


def test_a_profile_naming_unknown_or_unrun_stages_is_refused():
    stages, _ = _seeded_world()
    with pytest.raises(ValueError, match="unknown stages"):
        _profile("params.yaml", "default", stages=("data", "nope")).runs(stages)
    with pytest.raises(ValueError, match="does not run"):
        _profile("params.yaml", "default", seeded=("use",), stages=("data",)).runs(stages)


def test_dvc_loads_seeded_stages_across_profile_files(tmp_path):
    """DVC expands the foreach, and an edge crosses from one dvc.yaml to another."""
    stages, profiles = _seeded_world()
    code = {s.name: [] for s in stages}
    made = gen.made_by(profiles, stages)
    (tmp_path / "profiles/small").mkdir(parents=True)
    for p in profiles:
        (tmp_path / p.dvc_yaml).write_text(gen.render_profile(p, stages, code, made))
        (tmp_path / p.params).write_text("base: {seed: 0, device: cpu}\n")
    from dvc.repo import Repo

    Repo.init(str(tmp_path), no_scm=True)
    with Repo(str(tmp_path)) as repo:
        graph = repo.index.graph
        by_name = {address(s, tmp_path): s for s in graph.nodes}
        upstream = {address(u, tmp_path) for u in graph.successors(by_name["gather"])}
    assert {"fit@0", "fit@1", "fit@2"} <= set(by_name)
    assert upstream == {
        "fit@0", "fit@1", "fit@2", "profiles/small/dvc.yaml:fit@5", "profiles/small/dvc.yaml:fit@6"
    }  # fmt: skip


def test_stage_io_seed_replaces_base_seed_and_expands_per_seed_inputs(tmp_path):
    params = tmp_path / "params.yaml"
    params.write_text("base: {seed: 7, device: cpu}\n")
    s = stage("gather", base=("seed",), inputs={"m": "a/m.json", "x": "b/x.pt"}, per_seed=("m",),
              optional=("x",))  # fmt: skip
    args = s.parser().parse_args(
        ["--params", str(params), "--seed", "3", "--m", "a/seed_0,1/m.json", "--x", "-"]
    )
    io = StageIO(s, args)
    assert io.base.seed == 3
    assert io.seeds("m") == {0: Path("a/seed_0/m.json"), 1: Path("a/seed_1/m.json")}
    assert io.optional("x") is None
    with pytest.raises(TypeError, match="io.optional"):
        io.x  # noqa: B018
    with pytest.raises(TypeError, match="per_seed"):
        io.seeds("x")
    plain = StageIO(s, s.parser().parse_args(["--params", str(params)]))
    assert plain.base.seed == 7
    assert plain.seeds("m") == {None: Path("a/m.json")}


# -- unit stages: one run per value of a list param ----------------------------------------


def _unit_world() -> tuple[list[Stage], list[gen.Profile]]:
    """data -> robust (one run per adv_train.eps) -> use (reads the models' directory)."""
    from advinterp.config.adv_train import AdvTrainConfig

    data = stage("data", outputs={"out": out("data/d.zarr")})
    robust = stage(
        "robust",
        base=("seed",),
        inputs={"d": "data/d.zarr"},
        outputs={
            "model": out("artifacts/robust/models/at_{unit}.pt"),
            "m": metrics("artifacts/robust/metrics/at_{unit}.json"),
        },
        configs=(AdvTrainConfig,),
        unit=Unit(AdvTrainConfig, "eps"),
    )
    use = stage(
        "use", inputs={"models": "artifacts/robust/models"}, outputs={"o": out("artifacts/use/o")}
    )
    report = stage("report", SECOND, gathers=True, outputs={"r": figure("artifacts/report/r.png")})
    stages = gen.dag_order([data, robust, use, report])
    return stages, [_profile("params.yaml", "default", stages=None)]


def test_a_unit_stage_runs_once_per_value_of_its_list_param():
    stages, profiles = _unit_world()
    code = {s.name: [f"stages/{s.name}.py"] for s in stages}
    doc = yaml.safe_load(
        gen.render_profile(profiles[0], stages, code, gen.made_by(profiles, stages))
    )
    robust = doc["stages"]["robust"]
    assert robust["foreach"] == "${adv_train.eps}"  # DVC resolves it from params.yaml
    body = robust["do"]
    assert body["cmd"] == (
        "python -m stages.robust --eps ${item} --d data/d.zarr --model "
        "artifacts/robust/models/at_${item}.pt --m artifacts/robust/metrics/at_${item}.json"
    )
    assert body["outs"] == ["artifacts/robust/models/at_${item}.pt"]
    assert body["metrics"] == [{"artifacts/robust/metrics/at_${item}.json": {"cache": False}}]
    # Its params are its section but the list: a new value adds a run, it changes none.
    assert "adv_train.eps" not in body["params"] and "adv_train" not in body["params"]
    assert {"adv_train.alpha", "adv_train.epochs", "base.seed"} <= set(body["params"])
    # Readers depend on the directory every run writes into; the report on the metrics'.
    assert doc["stages"]["use"]["deps"] == ["stages/use.py", "artifacts/robust/models"]
    assert "artifacts/robust/metrics" in doc["stages"]["report"]["deps"]
    # ...and on the list, which names the runs it shows (a removed value's files stay)
    assert doc["stages"]["report"]["params"] == ["adv_train.eps"]


def test_dvc_resolves_a_unit_stage_per_value_and_links_its_readers_to_every_run(tmp_path):
    from dvc.repo import Repo

    stages, profiles = _unit_world()
    code = {s.name: [] for s in stages}
    text = gen.render_profile(profiles[0], stages, code, gen.made_by(profiles, stages))
    Repo.init(str(tmp_path), no_scm=True)
    (tmp_path / "dvc.yaml").write_text(text)
    (tmp_path / "params.yaml").write_text("adv_train:\n  eps: [0.02, 0.1]\n")
    with Repo(str(tmp_path)) as repo:
        assert {s.name for s in repo.index.stages} >= {"robust@0.02", "robust@0.1"}
        graph = repo.index.graph
        robust = {s for s in graph.nodes if s.name.startswith("robust@")}
        use = next(s for s in graph.nodes if s.name == "use")
        assert set(graph.successors(use)) == robust  # use depends on every run
    found = [a for a, _ in gen.instances(profiles, stages, tmp_path)]
    assert "robust@0.02" in found and "robust@0.1" in found


def test_unit_stage_declaration_checks_and_command_line(tmp_path):
    from advinterp.config.adv_train import AdvTrainConfig

    unit = Unit(AdvTrainConfig, "eps")
    assert unit.param == "adv_train.eps"
    with pytest.raises(ValueError, match="no key 'nope'"):
        Unit(AdvTrainConfig, "nope")
    with pytest.raises(ValueError, match="needs \\{unit\\}"):
        stage("u", outputs={"o": out("a/u/o.pt")}, configs=(AdvTrainConfig,), unit=unit)
    with pytest.raises(ValueError, match="own directory"):
        stage(
            "u",
            outputs={"o": out("a/u/o_{unit}.pt"), "p": out("a/u/p_{unit}.pt")},
            configs=(AdvTrainConfig,),
            unit=unit,
        )
    with pytest.raises(ValueError, match="no unit is declared"):
        stage("u", outputs={"o": out("a/u/o_{unit}.pt")})
    with pytest.raises(ValueError, match="must be one of its configs"):
        stage("u", outputs={"o": out("a/u/o_{unit}.pt")}, unit=unit)
    declared = stage(
        "u", outputs={"o": out("a/u/o_{unit}.pt")}, configs=(AdvTrainConfig,), unit=unit
    )
    with pytest.raises(SystemExit):  # the value is required
        declared.parser().parse_args([])
    params = tmp_path / "params.yaml"
    params.write_text("adv_train: {eps: [0.02, 0.1]}\n")
    args = declared.parser().parse_args(["--params", str(params), "--eps", "0.1"])
    io = StageIO(declared, args)
    assert io.unit == 0.1
    assert io.o == Path("a/u/o_0.1.pt")  # the default path with the value filled in
    assert unit.values(params) == [0.02, 0.1]
    with pytest.raises(TypeError, match="declares no unit"):
        _ = _io(tmp_path, TRAIN_LIKE, {"train": {}}).unit
