"""``memory``: peak RSS of every sharded stage at N and k·N images (flat: ratio near 1).

The stages that map over samples shard by shard (``dataset``'s image writes,
``features``, ``attack``, ``adv_features``, ``detect``, ``explain`` and ``lan_train``'s
masks) should hold about one shard at a time, so their peak memory should not grow
with the number of images. Each runs here as its real entry point (``python -m
stages.<name> --params <file> --<flag> <path> ...``) in two synthetic worlds built in a
temporary directory, the second with ``k`` times the images of the first; the row is
the ratio of the two peaks, each the ``ru_maxrss`` of that one child (``os.wait4``).

A world is the measured stages and every stage upstream of them, run in DAG order with
the embedded default's params (params.yaml) and a few cheap overrides: shards of 32
images (so even the small world's explained sets fill whole shards), one eps and one
IFGSM step, 40 LIME samples, one epoch of every training. The model stages (``train``,
``adv_train``, ``train_detector``) run once, in the small world, and the large world
reads their checkpoints: what the models predict does not matter here.

Each stage runs once per world (its peak varies by up to ~30 MiB, 3%, from run to run),
``lan_train`` twice, keeping the lower peak (its masks pass varies by ~100 MiB).
Each row's note gives the growth in MiB and what the stage's k·N images weigh,
i.e. how large a growth the ratio can see against the ~0.85 GiB a stage process holds
before its first image (torch), and, where the growth exceeds that noise, what grows.
"""

from __future__ import annotations

import copy
import logging
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
import zarr

from advinterp.store import open_store, str_list_attr
from bench.rows import Row
from flows.generate import (
    declarations,
    owner_of,
    producers,
    profile_names,
    unit_argv,
    upstream,
)
from stages.stage import Stage, fill_unit, render_unit

log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parents[1]
TARGET = 1.10
NOISE = 30.0  # MiB: one stage's peak varies about this much from run to run
IMAGE_MIB = 3 * 64 * 64 * 4 / 2**20  # one float32 RGB image at params.yaml's 64 px
SHARED = ("train", "adv_train", "train_detector")  # trained in the small world only

# Overrides of params.yaml in both worlds.
OVERRIDES: dict[str, Any] = {
    "base": {"device": "cpu", "chunk_size": 32},
    "train": {"epochs": 1},
    "adv_train": {"epochs": 1, "steps": 1, "eval_steps": 1, "eval_images": 16},
    "train_detector": {"epochs": 1, "eval_images": 16, "max_train_images": 64},
    "attack": {"eps": [0.02], "steps": 1},
    "localized_attack": {"num_images": 2, "max_regions": 2, "max_steps": 10, "patience": 5},
    "explain": {"lime_num_samples": 40, "ifgsm_eps": 0.02},
    "detect": {"eps": 0.02},
    "lan_train": {"epochs": 1},
    "scale": {"executor": "local"},
}


def world_params(scale: int) -> dict[str, Any]:
    """What grows with the world: 20 classes x 32 images, a class-stratified ~64 of the
    192 test images attacked, 32 of those explained (each x ``scale``)."""
    return {
        "dataset": {"synthetic": {"images_per_class": 32 * scale}},
        "attack": {"max_images": 64 * scale},
        "explain": {"ifgsm_images": 32 * scale},
    }


def _merge(base: dict[str, Any], new: Mapping[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for key, value in new.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def run_stage(
    stage: Stage, params: Path, paths: Mapping[str, Path], cwd: Path, extra: Sequence[str] = ()
) -> float:
    """Run ``python -m stages.<name> --params <params> <extra>`` with ``paths`` as its
    flags in ``cwd``; its peak RSS in MiB.

    The peak is this one child's ``ru_maxrss`` (``os.wait4``), not the largest of every
    child this process has waited for (``RUSAGE_CHILDREN``).

    Raises:
        RuntimeError: the stage exited non-zero (with the end of its log).
    """
    argv = stage.argv({flag: str(p) for flag, p in paths.items()})
    cmd = [sys.executable, "-m", f"stages.{stage.name}", "--params", str(params), *extra, *argv]
    logfile = cwd / f"{stage.name}.log"
    with logfile.open("w") as out:
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        # No terminal on stdin: a background benchmark must not be stopped by SIGTTIN.
        proc = subprocess.Popen(
            cmd, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=out
        )
        _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        tail = logfile.read_text()[-4000:]
        raise RuntimeError(f"stage {stage.name} exited {proc.returncode}:\n{tail}")
    return usage.ru_maxrss / 1024  # KiB on Linux


class World:
    """A directory holding a params file and every stage's declared paths below it."""

    def __init__(self, root: Path, scale: int, models: Path) -> None:
        self.root, self.models = root, models  # models: where the SHARED stages write
        root.mkdir(parents=True)
        params = yaml.safe_load((ROOT / "params.yaml").read_text())
        self.params = root / "params.yaml"
        merged = _merge(_merge(params, OVERRIDES), world_params(scale))
        self.params.write_text(yaml.safe_dump(merged, sort_keys=False))
        self.stages = {s.name: s for s in declarations()}
        self.made = producers(list(self.stages.values()))

    def path(self, name: str, flag: str) -> Path:
        """Stage ``name``'s ``flag`` in this world (a SHARED stage's output: in ``models``)."""
        rel = self.stages[name].paths()[flag]
        owner = owner_of(rel, self.made)
        return (self.models if owner and owner[1] in SHARED else self.root) / rel

    def needed(self, names: list[str], shared: bool) -> list[Stage]:
        """``names`` and every stage upstream of them in DAG order (SHARED ones if ``shared``)."""
        todo, found = set(names), set()
        while todo:
            name = todo.pop()
            found.add(name)
            todo |= upstream(self.stages[name], self.made, profile_names()) - found
        keep = found if shared else found - set(SHARED)
        return [s for s in self.stages.values() if s.name in keep]

    def build(
        self, names: list[str], shared: bool, repeat: Mapping[str, int]
    ) -> dict[str, tuple[float, float]]:
        """Run ``names`` and what they need; (peak MiB, seconds) of each stage run.

        A stage in ``repeat`` runs that many times (the others' outputs under
        ``again-<i>/``); its peak is the lowest, its time the first run's.
        """
        runs = {}
        for stage in self.needed(names, shared):
            paths = {flag: self.path(stage.name, flag) for flag in stage.paths()}
            if stage.unit is not None:  # one run per value of its list, as DVC runs it
                start = time.perf_counter()
                peak = 0.0
                for value in stage.unit.values(self.params):
                    made = render_unit(value)
                    filled = {f: Path(fill_unit(str(p), made)) for f, p in paths.items()}
                    argv = unit_argv(stage, made)
                    peak = max(peak, run_stage(stage, self.params, filled, self.root, argv))
                runs[stage.name] = peak, time.perf_counter() - start
                continue
            start = time.perf_counter()
            peak = run_stage(stage, self.params, paths, self.root)
            seconds = time.perf_counter() - start
            for i in range(1, repeat.get(stage.name, 1)):
                again = {f: self.root / f"again-{i}" / stage.paths()[f] for f in stage.outputs}
                peak = min(peak, run_stage(stage, self.params, {**paths, **again}, self.root))
            runs[stage.name] = peak, seconds
            log.info("%s: %s peak %.0f MiB, %.1f s", self.root.name, stage.name, peak, seconds)
        return runs

    def rows(self, name: str, flag: str, leaf: str) -> int:
        """Samples in every array called ``leaf`` of stage ``name``'s ``flag`` store."""
        group = open_store(self.path(name, flag))
        arrays = group.members(max_depth=None)
        return sum(
            int(a.shape[0])
            for key, a in arrays
            if isinstance(a, zarr.Array) and key.rsplit("/", 1)[-1] == leaf
        )


@dataclass(frozen=True)
class Measured:
    """A measured stage, what it goes through and how many of them in a built world."""

    name: str
    what: str
    count: Callable[[World], int]
    holds: str  # what the growth is, where known (the note's end)
    runs: int = 1  # runs per world, lowest peak kept (a stage whose peak is noisy)


def _detected(w: World) -> int:
    sets = str_list_attr(open_store(w.path("detect", "out")), "sets")
    return len(sets) * w.rows("detect", "out", "rows")


MEASURED = (
    Measured("dataset", "images", lambda w: w.rows("dataset", "out", "images"), ""),
    Measured("features", "images", lambda w: w.rows("dataset", "out", "images"), ""),
    Measured("attack", "attacked images", lambda w: w.rows("attack", "out", "rows"), ""),
    Measured(
        "adv_features",
        "images featurised",
        lambda w: w.rows("adv_features", "out", "features"),
        "",
    ),
    Measured("detect", "images detected", _detected, ""),
    Measured(
        "explain",
        "images explained",
        lambda w: w.rows("explain", "out", "images"),
        "gather_sets reading the IFGSM and clean sets whole, by zarr orthogonal selections "
        "of sharded arrays: the heap they grow with the rows selected stays with the "
        "process (glibc keeps it, malloc_trim returns it) under the flat per-shard compute",
    ),
    Measured(
        "lan_train",
        "images",
        lambda w: w.rows("lan_train", "masks", "masks"),
        "the training epoch's shuffle buffer (up to SHUFFLE_BUFFER = 8192 samples: the "
        "whole train split here) and the test split's images and masks read whole for the "
        "end checks",
        runs=2,  # the peak of its masks pass varies by ~100 MiB from run to run
    ),
)


def _row(m: Measured, small: tuple[float, float, int], large: tuple[float, float, int]) -> Row:
    (mib_n, s_n, n), (mib_kn, s_kn, kn) = small, large
    note = (
        f"{mib_n:.0f} vs {mib_kn:.0f} MiB: {mib_kn - mib_n:+.0f} MiB for {kn - n} more "
        f"(all {kn} weigh {kn * IMAGE_MIB:.0f} MiB at 64 px); {s_n:.0f} s vs {s_kn:.0f} s"
    )
    return Row(
        m.name,
        f"peak RSS at {n} {m.what}",
        f"peak RSS ratio ({kn}/{n} {m.what})",
        mib_kn,
        mib_n,
        TARGET,
        higher_is_better=False,
        note=f"{note}; grows by {m.holds}" if m.holds and mib_kn - mib_n > NOISE else note,
    )


def run(k: int = 4) -> list[Row]:
    """One row per sharded stage: its peak RSS in a world ``k`` times the small one's."""
    start = time.perf_counter()
    names = [m.name for m in MEASURED]
    found: dict[str, list[tuple[float, float, int]]] = {name: [] for name in names}
    with tempfile.TemporaryDirectory(prefix="bench-memory-") as d:
        small = Path(d) / "x1"
        for scale in (1, k):
            world = World(Path(d) / f"x{scale}", scale, small)
            runs = world.build(names, scale == 1, {m.name: m.runs for m in MEASURED})
            for m in MEASURED:
                found[m.name].append((*runs[m.name], m.count(world)))
    log.info("memory: both worlds built and measured in %.0f s", time.perf_counter() - start)
    return [_row(m, *found[m.name]) for m in MEASURED]
