"""Same inputs and seed, same outputs: every stage run twice gives identical artifacts.

Two tiny worlds are built by the stages themselves (tests/stages/stage_world.py) in two
directories, each by its own fresh interpreter (two :class:`StageRunner` servers, so
nothing is shared between the runs, not even Python's hash seed), every stage with its
declared relative paths so that provenance attrs match too. One is the session's world
the bad-input tests use. Then, stage by stage, for every output it declares:

* every zarr array of every output store is bitwise identical (``tobytes``), and so
  are the stores' attrs;
* every checkpoint holds equal tensors (``torch.equal``) and equal metadata;
* every CSV table, markdown table and PNG figure is byte-identical, every metrics JSON equal but for
  wall-clock timings (keys ending in ``seconds``), and so is the report's HTML page;
* an output of any other kind is a failure until this test knows how to compare it.

This holds with ``base.num_threads: 1`` (the tiny params) on CPU. The README states where
it cannot hold (multi-threaded CPU reductions, CUDA kernels).
"""

from __future__ import annotations

import filecmp
import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch
import zarr

from flows.generate import declarations
from stages.stage import collection
from tests.stages.stage_world import World, make_world


@pytest.fixture(scope="module")
def twins(tiny_world, tmp_path_factory) -> tuple[World, Path]:
    """The session's tiny world and the root of a second one built the same way in
    another directory."""
    with make_world(tmp_path_factory.mktemp("twin")) as twin:
        return tiny_world, twin.root


def _arrays(group: zarr.Group, prefix: str = "") -> dict[str, zarr.Array]:
    out = {}
    for name, member in group.members():
        if isinstance(member, zarr.Array):
            out[prefix + name] = member
        else:
            out.update(_arrays(member, f"{prefix}{name}/"))
    return out


def _groups(group: zarr.Group, prefix: str = "") -> dict[str, dict]:
    out = {prefix or "/": dict(group.attrs)}
    for name, member in group.members():
        if isinstance(member, zarr.Group):
            out.update(_groups(member, f"{prefix}{name}/"))
    return out


def assert_same_store(a: Path, b: Path) -> None:
    ga, gb = zarr.open_group(str(a), mode="r"), zarr.open_group(str(b), mode="r")
    assert _groups(ga) == _groups(gb), f"{a.name}: attrs differ"
    xa, xb = _arrays(ga), _arrays(gb)
    assert sorted(xa) == sorted(xb), f"{a.name}: different arrays"
    assert xa, f"{a.name}: no arrays"
    for name in xa:
        va, vb = np.asarray(xa[name][...]), np.asarray(xb[name][...])
        assert va.dtype == vb.dtype and va.shape == vb.shape, f"{a.name}/{name}"
        assert va.tobytes() == vb.tobytes(), f"{a.name}/{name}: values differ"
        assert dict(xa[name].attrs) == dict(xb[name].attrs), f"{a.name}/{name}: attrs differ"


def _assert_same_value(va, vb, where: str) -> None:
    """Tensors equal exactly; dicts, lists and tuples compared member by member."""
    assert type(va) is type(vb), f"{where}: {type(va).__name__} vs {type(vb).__name__}"
    if isinstance(va, torch.Tensor):
        assert torch.equal(va, vb), f"{where} differs"
    elif isinstance(va, dict):
        assert va.keys() == vb.keys(), f"{where}: different keys"
        for k in va:
            _assert_same_value(va[k], vb[k], f"{where}.{k}")
    elif isinstance(va, list | tuple):
        assert len(va) == len(vb), f"{where}: different lengths"
        for i, (x, y) in enumerate(zip(va, vb, strict=True)):
            _assert_same_value(x, y, f"{where}[{i}]")
    else:
        assert va == vb, f"{where} differs"


def assert_same_checkpoint(a: Path, b: Path) -> None:
    oa, ob = torch.load(a, weights_only=True), torch.load(b, weights_only=True)
    _assert_same_value(oa, ob, a.name)


def _without_timings(obj):
    """JSON minus wall-clock measurements (keys ending in ``seconds``), which vary."""
    if isinstance(obj, dict):
        return {k: _without_timings(v) for k, v in obj.items() if not k.endswith("seconds")}
    if isinstance(obj, list):
        return [_without_timings(v) for v in obj]
    return obj


# A metrics table row of the report holding a wall-clock timing.
_TIMING_CELL = re.compile(r"<tr><td>[^<]*seconds</td><td>[^<]*</td></tr>")


def assert_same_output(a: Path, b: Path) -> None:
    """Compare one stage output (store, checkpoint, directory, table or figure)."""
    assert a.exists() and b.exists(), f"{a} missing"
    if (a / "zarr.json").is_file():
        assert_same_store(a, b)
    elif a.is_dir():
        names = sorted(p.name for p in a.iterdir())
        assert names == sorted(p.name for p in b.iterdir()), f"{a.name}: different files"
        for name in names:
            assert_same_output(a / name, b / name)
    elif a.suffix == ".pt":
        assert_same_checkpoint(a, b)
    elif a.suffix == ".json":
        ja, jb = json.loads(a.read_text()), json.loads(b.read_text())
        assert _without_timings(ja) == _without_timings(jb), f"{a}: contents differ"
    elif a.suffix in (".csv", ".png", ".md"):  # matplotlib's Agg PNGs embed no date
        assert filecmp.cmp(a, b, shallow=False), f"{a}: contents differ"
    elif a.suffix == ".html":
        assert _TIMING_CELL.sub("", a.read_text()) == _TIMING_CELL.sub("", b.read_text()), a
    else:
        raise AssertionError(f"{a}: no comparison for a {a.suffix or 'suffix-less'} file")


@pytest.mark.parametrize("stage", [s.name for s in declarations()])
def test_stage_run_twice_gives_identical_outputs(twins, stage):
    world, other = twins
    for output in world.stage(stage).outputs.values():
        path = collection(output.path)  # a unit stage's: the directory of every run's file
        assert_same_output(world.root / path, other / path)
