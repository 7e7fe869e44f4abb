"""``noop``: a no-op ``dvc repro`` of the whole DAG, beside DVC's own floor for its shape.

In a ``git clone`` of HEAD whose workspace is checked out from this repository's DVC
cache (so nothing reruns: run ``dvc repro`` here first), ``dvc repro`` where every stage
is current, against issue #17's budget of 2 s.

The peer is the same DAG's *shape* rebuilt without any of our files: one run per run of
ours, each with as many file dependencies, the same params keys of the same params files
and as many outputs, where every directory (a zarr store) is one small file. Its no-op
``dvc repro`` is what DVC itself needs to check this many runs, dependencies and params:
the part of our time no change of our stores can remove.

Takes ~2 min (the clone's checkout, five no-ops each, and the peer's first repro).
"""

from __future__ import annotations

import logging
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import yaml

from bench.rows import Row
from flows.dvc_dag import dvc_env

ROOT = Path(__file__).resolve().parents[1]
BUDGET_SECONDS = 2.0  # issue #17
REPEATS = 5
log = logging.getLogger("bench.noop")


@dataclass(frozen=True)
class RunShape:
    """What DVC checks for one run: its file deps, params keys per file and outputs."""

    name: str
    deps: tuple[str, ...]
    params: tuple[tuple[str, tuple[str, ...]], ...]
    outs: tuple[tuple[str, bool], ...]  # (path, cached)


def dag_shape(repo_root: Path) -> list[RunShape]:
    """Every run of the DVC project at ``repo_root`` (foreach items resolved), by DVC's
    own index: dependency and output paths relative to the root."""
    from dvc.dependency.param import ParamsDependency
    from dvc.repo import Repo

    shapes = []
    with Repo(str(repo_root)) as repo:
        for stage in repo.index.stages:
            deps, params = [], []
            for dep in stage.deps:
                rel = Path(dep.fs_path).relative_to(repo_root).as_posix()
                if isinstance(dep, ParamsDependency):
                    params.append((rel, tuple(sorted(dep.params))))
                else:
                    deps.append(rel)
            outs = tuple(
                (Path(o.fs_path).relative_to(repo_root).as_posix(), bool(o.use_cache))
                for o in stage.outs
            )
            dvcfile = Path(stage.path).relative_to(repo_root).as_posix()
            name = stage.name if dvcfile == "dvc.yaml" else f"{dvcfile}:{stage.name}"
            shapes.append(RunShape(name, tuple(deps), tuple(params), outs))
    return shapes


def write_floor_project(shapes: list[RunShape], params_from: Path, dest: Path) -> None:
    """A DVC project at ``dest`` (a git repo) with the runs of ``shapes`` and none of our
    files: every output and every dependency that is no output is one small file at the
    same path, except a directory holding other runs' outputs (e.g. a foreach's models),
    which stays a directory. The params files are copied from ``params_from``.
    """
    outs = {path for s in shapes for path, _ in s.outs}
    holders = {p for s in shapes for p in s.deps if any(o.startswith(p + "/") for o in outs)}
    subprocess.run(["git", "init", "--quiet", str(dest)], check=True)
    for path in {p for s in shapes for p in s.deps} - outs - holders:
        (dest / path).parent.mkdir(parents=True, exist_ok=True)
        (dest / path).write_text(path + "\n")
    for path in {p for s in shapes for p, _ in s.params}:
        (dest / path).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(params_from / path, dest / path)
    stages = {}
    for i, s in enumerate(shapes):
        made = " && ".join(f"mkdir -p {Path(p).parent} && echo {i} > {p}" for p, _ in s.outs)
        stages[f"run{i}"] = {
            "cmd": made or "true",
            "deps": list(s.deps),
            "params": [{path: list(keys)} for path, keys in s.params],
            "outs": [p if cached else {p: {"cache": False}} for p, cached in s.outs],
        }
    (dest / "dvc.yaml").write_text(yaml.safe_dump({"stages": stages}, sort_keys=False))


def _dvc(args: list[str], cwd: Path) -> float:
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "dvc", *args], cwd=cwd, env=dvc_env(), capture_output=True, text=True
    )
    if done.returncode != 0:
        raise RuntimeError(f"dvc {' '.join(args)} failed in {cwd}:\n{done.stdout}{done.stderr}")
    return time.perf_counter() - start


def _noop(cwd: Path) -> float:
    """Best of :data:`REPEATS` ``dvc repro``, after checking nothing in ``cwd`` is stale."""
    status = subprocess.run(
        [sys.executable, "-m", "dvc", "status", "--quiet"], cwd=cwd, env=dvc_env(), check=False
    )
    if status.returncode != 0:
        raise RuntimeError(
            f"{cwd}: not every stage is current (see `dvc status`); run `dvc repro` in "
            f"{ROOT} and commit before benchmarking the no-op"
        )
    return min(_dvc(["repro"], cwd) for _ in range(REPEATS))


def run() -> list[Row]:
    with tempfile.TemporaryDirectory() as d:
        clone, floor = Path(d) / "advinterp", Path(d) / "floor"
        subprocess.run(["git", "clone", "--quiet", str(ROOT), str(clone)], check=True)
        _dvc(["cache", "dir", "--local", str(ROOT / ".dvc" / "cache")], clone)
        _dvc(["checkout", "--quiet"], clone)
        ours = _noop(clone)
        shapes = dag_shape(clone)
        write_floor_project(shapes, clone, floor)
        _dvc(["init", "--quiet"], floor)
        _dvc(["config", "core.analytics", "false"], floor)
        _dvc(["repro", "--quiet"], floor)
        theirs = _noop(floor)
    deps = sum(len(s.deps) for s in shapes)
    keys = sum(len(k) for s in shapes for _, k in s.params)
    touched = {p for s in shapes for p in s.deps} | {p for s in shapes for p, _ in s.outs}
    stores = len({p for p in touched if p.endswith(".zarr")})
    shape = f"{len(shapes)} runs, {deps} file/directory deps, {keys} params keys"
    log.info("no-op: ours %.2f s, DVC floor for %s %.2f s", ours, shape, theirs)
    return [
        Row(
            "no-op dvc repro (whole DAG)",
            "budget 2 s (#17)",
            "time ratio (repro/budget)",
            ours,
            BUDGET_SECONDS,
            1.0,
            higher_is_better=False,
            note=f"{ours:.2f} s, every stage skipped; DVC's floor for this shape {theirs:.2f} s",
        ),
        Row(
            "no-op dvc repro (whole DAG)",
            f"the same shape without our files ({shape})",
            "time ratio (ours/floor)",
            ours,
            theirs,
            None,
            higher_is_better=False,
            note=(
                f"{ours:.2f} s vs {theirs:.2f} s: what is above 1 is walking the "
                f"{stores} zarr stores' files that runs depend on or write"
            ),
        ),
    ]
