"""A tiny world of valid stage inputs, built by running every declared stage.

A world is a directory ``root`` holding ``params.yaml`` (the tiny params of
tests/conftest.py) in which each stage of :func:`flows.generate.declarations` runs in
DAG order, as ``dvc repro`` would run it: working directory ``root``, no path flags, so
every stage reads and writes its declared relative paths (``data/dataset.zarr``,
``artifacts/<stage>/...``). Nothing here names a stage or a path: the declarations are
the only table. The repository files a stage reads (``sources``, e.g. dvc.yaml for the
report) are copied in.

Every stage must build: one that fails, or exits 0 without writing a declared output,
fails the test that needed the world, with the stage's stderr.
"""

from __future__ import annotations

import contextlib
import importlib
import shutil
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from advinterp.profiles import locate
from flows.generate import (
    declarations,
    other_profile,
    producers,
    profile_names,
    unit_argv,
    upstream,
)
from stages.stage import ABSENT, Stage, collection, fill_unit, render_unit
from tests.conftest import ROOT, tiny_params
from tests.stages.stage_runner import StageRunner

PARAMS = "params.yaml"  # the world's params file, relative to its root


class WorldBuildError(AssertionError):
    """A stage of the world failed to build (an assertion: the test that needed it fails)."""


def downstream(stages: list[Stage], name: str) -> set[str]:
    """The stages that read, directly or transitively, an output of stage ``name`` (and
    those that gather every stage's results, the report)."""
    made = producers(stages)
    reads = {s.name: upstream(s, made, profile_names()) for s in stages}
    for s in stages:
        if s.gathers:
            reads[s.name] |= {o.name for o in stages if not o.gathers}
    found: set[str] = set()
    frontier = {name}
    while frontier:
        frontier = {s for s, ups in reads.items() if ups & frontier} - found
        found |= frontier
    return found - {name}


def flag_argv(stage: Stage, paths: Mapping[str, Path | str]) -> list[str]:
    """``--flag path`` for ``paths`` (flag -> path), each flag one ``stage`` declares."""
    unknown = set(paths) - set(stage.paths())
    if unknown:
        raise KeyError(f"stage {stage.name} declares no flags {sorted(unknown)}")
    return stage.argv({flag: str(path) for flag, path in paths.items()})


def section_names(stage: Stage) -> list[str]:
    """The params sections ``stage`` loads: ``base`` (when it reads any base key), its
    configs and its runtime sections."""
    names = ["base"] if stage.base else []
    return names + [m.section for m in stage.models if m.section]


@dataclass
class World:
    """A built world: its root, the params that made it, the stages and their runner."""

    root: Path
    params: dict[str, Any]
    stages: dict[str, Stage]  # by name, in DAG order
    runner: StageRunner

    def stage(self, name: str) -> Stage:
        return self.stages[name]

    def path(self, stage: str, flag: str) -> Path:
        """``root`` / the path ``stage`` declares for ``flag`` (an input, source or output;
        a unit stage's output: the directory its runs write their files to)."""
        paths = self.stages[stage].paths()
        if flag not in paths:
            raise KeyError(f"stage {stage} declares no flag '{flag}' (it has {sorted(paths)})")
        return self.root / collection(paths[flag])


def profile_argv(stage: Stage, profile: str, runs: set[str], made: Mapping[str, str]) -> list[str]:
    """``--flag path`` putting every input and output of ``stage`` where ``profile`` keeps
    it (one run, no seeds); an optional input no stage of the profile writes is absent."""
    paths: dict[str, str] = {}
    for flag, path in stage.inputs.items():
        owner = next((n for p, n in made.items() if path == p or path.startswith(p + "/")), None)
        paths[flag] = locate(path, profile) if owner in runs else ABSENT
    paths.update({flag: locate(o.path, profile) for flag, o in stage.outputs.items()})
    return stage.argv(paths)


def build_profiles(runner: StageRunner, root: Path, stages: list[Stage]) -> None:
    """Run every other profile's stages (one seed each) with tiny params, where the
    profile keeps its outputs (``artifacts/<profile>/...``): the findings read them."""
    made = producers(stages)
    for params_file in sorted((ROOT / "profiles").glob("*/params.yaml")):
        profile = params_file.parent.name
        rel = f"profiles/{profile}/{PARAMS}"
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        params = tiny_params(profile)
        (root / rel).write_text(yaml.safe_dump(params, sort_keys=False))
        runs = set(params["profile"]["stages"])
        for stage in (s for s in stages if s.name in runs):
            argv = ["--params", rel, *profile_argv(stage, profile, runs, made)]
            code, _, err = runner.run(stage.name, argv, root)
            if code != 0:
                raise WorldBuildError(
                    f"building the tiny world: {profile} stage {stage.name} exited {code}:\n"
                    f"{err[-6000:]}"
                )


def build_world(runner: StageRunner, root: Path, stages: list[Stage]) -> None:
    """Run ``stages`` (DAG order) in ``root`` with their declared paths (after the other
    profiles, when one of them reads theirs).

    Raises:
        WorldBuildError: a stage exited non-zero (with its stderr) or left a declared
            output unwritten.
    """
    if any(other_profile(p, profile_names()) for s in stages for p in s.inputs.values()):
        build_profiles(runner, root, declarations())
    for stage in stages:
        for rel in stage.sources.values():
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(ROOT / rel, root / rel)
        # A unit stage runs once per value of its list param, as DVC's foreach runs it.
        units = [None] if stage.unit is None else stage.unit.values(root / PARAMS)
        for value in units:
            unit = [] if value is None else unit_argv(stage, render_unit(value))
            code, _, err = runner.run(stage.name, ["--params", PARAMS, *unit], root)
            if code != 0:
                raise WorldBuildError(
                    f"building the tiny world: stage {stage.name} exited {code}:\n{err[-6000:]}"
                )
            made = render_unit(value) if value is not None else ""
            outs = [fill_unit(o.path, made) for o in stage.outputs.values()]
            missing = [p for p in outs if not (root / p).exists()]
            if missing:
                raise WorldBuildError(
                    f"building the tiny world: stage {stage.name} exited 0 without writing "
                    f"{missing}:\n{err[-3000:]}"
                )


@contextlib.contextmanager
def make_world(root: Path, stages: list[Stage] | None = None) -> Iterator[World]:
    """Build a world in ``root`` with its own fresh :class:`StageRunner`, kept running for
    the caller; ``stages`` defaults to every declared stage (a subset must hold the
    producers of its inputs)."""
    stages = declarations() if stages is None else stages
    root.mkdir(parents=True, exist_ok=True)
    params = tiny_params()
    (root / PARAMS).write_text(yaml.safe_dump(params, sort_keys=False))
    runner = StageRunner()
    try:
        build_world(runner, root, stages)
        yield World(root, params, {s.name: s for s in stages}, runner)
    finally:
        runner.close()


def declared(name: str) -> Stage:
    """The declaration of ``stages/<name>.py`` alone (a test that runs one stage)."""
    stage = getattr(importlib.import_module(f"stages.{name}"), "STAGE", None)
    if not isinstance(stage, Stage):
        raise TypeError(f"stages/{name}.py has no STAGE declaration")
    return stage
