"""bench.noop's peer: a real DVC project's shape, read by DVC and rebuilt without its files,
is a DVC project of the same shape (runs, deps, params keys, outputs) where nothing is
stale after one repro."""

from __future__ import annotations

import sys

import yaml

from bench import noop
from bench.__main__ import BENCHMARKS
from tests.conftest import init_repo, run

# gen writes a directory; fit runs once per params value into one directory; use reads
# that directory and gen's; a second dvc.yaml reads its own params file.
DVC_YAML = {
    "stages": {
        "gen": {
            "cmd": "mkdir -p out/gen.zarr && echo x > out/gen.zarr/a && echo y > out/gen.zarr/b",
            "deps": ["src/gen.py"],
            "params": ["gen.size"],
            "outs": ["out/gen.zarr"],
        },
        "fit": {
            "foreach": "${fit.eps}",
            "do": {
                "cmd": "mkdir -p out/models && echo ${item} > out/models/m_${item}.txt",
                "deps": ["src/fit.py", "out/gen.zarr"],
                "params": ["fit.steps", "gen.size"],
                "outs": ["out/models/m_${item}.txt"],
            },
        },
        "use": {
            "cmd": "echo done > out/use.json",
            "deps": ["src/use.py", "out/models", "out/gen.zarr"],
            "outs": [{"out/use.json": {"cache": False}}],
        },
    }
}
SUB_DVC_YAML = {
    "stages": {
        "side": {
            "cmd": "echo s > side.txt",
            "deps": ["../src/gen.py"],
            "params": [{"params.yaml": ["k"]}],
            "outs": ["side.txt"],
        }
    }
}


def _project(repo):
    repo.mkdir()
    (repo / "src").mkdir()
    for name in ("gen", "fit", "use"):
        (repo / "src" / f"{name}.py").write_text(f"# {name}\n")
    (repo / "params.yaml").write_text(
        yaml.safe_dump({"gen": {"size": 4}, "fit": {"eps": [0.1, 0.2], "steps": 3}})
    )
    (repo / "dvc.yaml").write_text(yaml.safe_dump(DVC_YAML, sort_keys=False))
    (repo / "sub").mkdir()
    (repo / "sub" / "params.yaml").write_text("k: 1\n")
    (repo / "sub" / "dvc.yaml").write_text(yaml.safe_dump(SUB_DVC_YAML, sort_keys=False))
    init_repo(repo, "project")
    run([sys.executable, "-m", "dvc", "repro", "--quiet"], repo)
    return repo


def _counts(shapes):
    return sorted(
        (len(s.deps), tuple(sorted(k for _, keys in s.params for k in keys)), len(s.outs))
        for s in shapes
    )


def test_registered_before_edit_cost():
    assert BENCHMARKS.index("noop") < BENCHMARKS.index("edit_cost")


def test_shape_is_read_off_every_run_by_dvc(tmp_path):
    shapes = {s.name: s for s in noop.dag_shape(_project(tmp_path / "p"))}
    assert set(shapes) == {"gen", "fit@0.1", "fit@0.2", "use", "sub/dvc.yaml:side"}
    assert shapes["fit@0.2"].deps == ("src/fit.py", "out/gen.zarr")
    assert shapes["fit@0.2"].params == (("params.yaml", ("fit.steps", "gen.size")),)
    assert shapes["fit@0.2"].outs == (("out/models/m_0.2.txt", True),)
    assert shapes["use"].outs == (("out/use.json", False),)
    assert shapes["sub/dvc.yaml:side"].deps == ("src/gen.py",)
    assert shapes["sub/dvc.yaml:side"].params == (("sub/params.yaml", ("k",)),)


def test_floor_project_has_the_same_shape_and_reproduces_to_a_no_op(tmp_path):
    project = _project(tmp_path / "p")
    shapes = noop.dag_shape(project)
    floor = tmp_path / "floor"
    noop.write_floor_project(shapes, project, floor)
    run([sys.executable, "-m", "dvc", "init", "-q"], floor)
    run([sys.executable, "-m", "dvc", "repro", "--quiet"], floor)
    # gen's directory became a file; the directory holding fit's outputs stayed one
    assert (floor / "out" / "gen.zarr").is_file()
    assert (floor / "out" / "models").is_dir()
    assert _counts(noop.dag_shape(floor)) == _counts(shapes)
    status = run([sys.executable, "-m", "dvc", "status", "--quiet"], floor, check=False)
    assert status.returncode == 0, status.stdout
    assert noop._noop(floor) > 0
