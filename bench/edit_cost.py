"""``edit_cost``: what a typical edit makes DVC rerun, against the least it could (#17 item 5).

For each edit of :data:`EDITS` (a params.yaml value or one code file), in a ``git clone``
of this repository's HEAD whose DVC cache is filled from this repository's cache (a local
DVC remote, so nothing here is written): apply the edit, ask ``dvc status --json`` which
runs it makes stale (both profiles: it reads every dvc.yaml of the repository), undo it.

What ``dvc repro`` would run (the *cost*) is those runs plus, walking the DAG downstream,
every run that reads an output the edit can change: a rerun whose outputs come out
byte-identical (the stages are seeded) stops there, as DVC then finds its readers current.
The *minimum* is the runs whose outputs the edit can change, declared per edit with the
reason (:attr:`Edit.changes`); a run in the cost but not in the minimum reruns although
its output cannot change. Seconds per run come from ``bench/results/pipeline_stages.json``
(``python -m bench pipeline``, one ``dvc repro --force``); a run missing there (a stage
added since) is timed here by ``dvc repro --single-item --force`` in the clone, beside
``attack`` to put it at that file's pace (:class:`Timed`).

Also the whole DAG with ``--jobs 2`` against ``--jobs 1`` (the sum of the runs' seconds)
and against the critical path (the longest chain of the DAG): computed from the same
seconds by scheduling the DAG on 2 slots, each run as fast as it ran alone. Measured
instead (``python -m flows.pipeline --force --jobs 1``, then ``--jobs 2``, in a fresh
clone, ~40 min on 2 cores) with ``BENCH_EDIT_COST_JOBS=1 python -m bench edit_cost``,
which stores the walls in ``bench/results/pipeline_jobs.json`` for later runs to report.

Uncommitted changes are not benchmarked: commit first. Takes ~3-5 min on 2 cores (plus
any run missing from pipeline_stages.json).
"""

from __future__ import annotations

import datetime
import heapq
import json
import logging
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path, PurePosixPath
from typing import Any

import yaml

from bench.rows import Row, throughput_row

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
STAGE_TIMES = RESULTS / "pipeline_stages.json"
JOBS_FILE = RESULTS / "pipeline_jobs.json"
JOBS_ENV = "BENCH_EDIT_COST_JOBS"  # =1: also measure the whole DAG at --jobs 1 and 2
REFERENCE = "attack"  # the run that puts runs missing from STAGE_TIMES at its pace
EPS_TARGET = 0.35  # issue #17: adding one eps costs <= 0.35 of a full attack run
DIGITS = "profiles/digits/dvc.yaml:"
PROBE = "\n# edit-cost probe: any byte changed in a code dep makes its stages stale\n"
log = logging.getLogger("bench.edit_cost")


# --- the edits ------------------------------------------------------------------------


def set_param(text: str, section: str, key: str, fn: Callable[[Any], Any]) -> str:
    """``text`` (a params.yaml) with ``section.key`` set to ``fn(old value)``.

    Only the key's own line changes (its comment and the rest of the file stay as they
    are); the key must sit directly under the top-level ``section`` on one line.

    Raises:
        KeyError: the section has no such one-line key.
    """
    lines = text.splitlines(keepends=True)
    inside = False
    pattern = re.compile(rf"^(  {re.escape(key)}:[ \t]*)(\[[^\]\n]*\]|[^#\s]+)(.*)$", re.S)
    for i, line in enumerate(lines):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        if re.match(r"^\S", line):
            inside = line.startswith(f"{section}:")
            continue
        m = pattern.match(line) if inside else None
        if m:
            new = json.dumps(fn(yaml.safe_load(m.group(2))))
            lines[i] = f"{m.group(1)}{new}{m.group(3)}"
            return "".join(lines)
    raise KeyError(f"no one-line key {section}.{key} in the params file")


def _add(value: float, grid: list[float]) -> list[float]:
    if value in grid:
        raise ValueError(f"{value} is already in {grid}: pick a new one")
    return sorted([*grid, value])


def append_probe(text: str) -> str:
    """A code file with one comment line appended: DVC hashes a dep's bytes, so this is
    what any edit of the file costs (what it may change is :attr:`Edit.changes`)."""
    return text + PROBE


@dataclass(frozen=True)
class Edit:
    """One typical edit, applied as ``file``'s text -> ``change(text)``.

    ``changes`` is the minimum: each run whose outputs the edit can change, as its DVC
    address without ``@item`` (``explain`` is every seed; ``profiles/digits/dvc.yaml:
    lan_train`` the digits profile's) or with it for one run (``adv_train@0.06``, the
    run an added eps adds), with the file names of those outputs or None for all of
    them. ``why`` says why the other runs' outputs cannot change.
    """

    name: str
    file: str
    change: Callable[[str], str]
    what: str
    changes: Mapping[str, tuple[str, ...] | None]
    why: str


ADD_EPS = "add one eps to attack.eps"

EDITS: tuple[Edit, ...] = (
    Edit(
        ADD_EPS,
        "params.yaml",
        partial(set_param, section="attack", key="eps", fn=partial(_add, 0.08)),
        "attack.eps gains 0.08",
        {
            "attack": None,  # the new eps group, its success rates
            "adv_features": None,  # features of every attacked set
            "sje": ("sje.zarr",),  # theta(x)W of every set (W is fit on clean features)
            "accuracy": None,  # Fig. 4: a point per eps
            "distances": None,  # the closer-to-wrong curve covers every eps
            "lan_detect": None,  # evaluates the standard model's IFGSM set at every eps
            "findings": None,
            "report": None,
        },
        "the targets are seeded per image, not per eps, so the other eps groups come out "
        "the same; detect, ground (detect.eps), explain (explain.ifgsm_eps) and compare "
        "(compare.eps) read one fixed eps; explain_eval reads only explain",
    ),
    Edit(
        "add one adversarial-training eps",
        "params.yaml",
        partial(set_param, section="adv_train", key="eps", fn=partial(_add, 0.06)),
        "adv_train.eps gains 0.06",
        {
            "adv_train@0.06": None,  # the second robust model: its own run
            "attack": None,  # every model is attacked: a new model group
            "adv_features": None,
            "sje": None,  # one W per model (seed + model index: the others' W unchanged)
            "accuracy": None,  # Fig. 4 pairs each eps with the nearest AT model
            "a2e_robust": None,  # robust_model null = the largest train eps
            "findings": None,
            "report": None,
        },
        "detect, ground and distances use the AT model nearest their eps 0.02 (still "
        "at_0.02); explain, compare and lan_detect use the standard model's attacks only",
    ),
    Edit(
        "change one explainer param",
        "params.yaml",
        partial(set_param, section="explain", key="lime_num_samples", fn=lambda n: n // 2),
        "explain.lime_num_samples halved",
        {
            "explain": None,
            "explain_eval": None,
            "compare": None,  # runs LIME with explain.lime_num_samples too
            "findings": None,
            "report": None,
        },
        "every stage reading the key or LIME's maps changes",
    ),
    Edit(
        "edit one method's figure code",
        "advinterp/explainers/lan_figures.py",
        append_probe,
        "advinterp/explainers/lan_figures.py (the LAN mask grid, Figure 1 analogue)",
        {
            "lan_train": ("figure1.png",),
            f"{DIGITS}lan_train": ("figure1.png",),
            "report": None,
        },
        "only figure1.png changes, not the LAN, its masks or metrics; lan_train draws the "
        "figure, so the LAN is retrained to redraw it",
    ),
    Edit(
        "edit one method's config model",
        "advinterp/config/lan_train.py",
        append_probe,
        "advinterp/config/lan_train.py, the LAN's LanTrainConfig (e.g. a field's default)",
        {
            "lan_train": None,
            f"{DIGITS}lan_train": None,
            "mask_classifier": None,
            f"{DIGITS}mask_classifier": None,
            "lan_detect": None,
            f"{DIGITS}lan_detect": None,
            "compare": None,  # reads the LAN
            "findings": None,
            "report": None,
        },
        "the LAN, its masks and whatever reads them change; no other section's model is in "
        "the module",
    ),
    Edit(
        "change the report",
        "advinterp/report.py",
        append_probe,
        "advinterp/report.py",
        {"report": None},
        "only the report reads it",
    ),
)


# --- the DAG and what reruns ----------------------------------------------------------


@dataclass(frozen=True)
class Run:
    """One DVC run (a stage, or one ``foreach`` item), as ``dvc repro`` names it."""

    name: str
    upstream: tuple[str, ...]
    reads: frozenset[str]  # repo-relative paths of its file deps
    writes: frozenset[str]  # repo-relative paths of its outputs

    @property
    def key(self) -> str:
        """The name without ``@item``: how :attr:`Edit.changes` names every run of it."""
        return self.name.split("@")[0]

    def declared(self, changes: Mapping[str, tuple[str, ...] | None]) -> bool:
        return self.name in changes or self.key in changes

    def changes(self, changes: Mapping[str, tuple[str, ...] | None]) -> tuple[str, ...] | None:
        """Its entry in ``changes``: under its own name, else under its stage's."""
        return changes[self.name] if self.name in changes else changes.get(self.key)


def _overlap(a: str, b: str) -> bool:
    return a == b or a.startswith(f"{b}/") or b.startswith(f"{a}/")


def changed_outputs(run: Run, changes: Mapping[str, tuple[str, ...] | None]) -> set[str]:
    """The outputs of ``run`` that the edit can change."""
    if not run.declared(changes):
        return set()
    names = run.changes(changes)
    return (
        set(run.writes)
        if names is None
        else {w for w in run.writes if PurePosixPath(w).name in names}
    )


def reruns(
    dag: Sequence[Run], stale: Iterable[str], changes: Mapping[str, tuple[str, ...] | None]
) -> list[str]:
    """What ``dvc repro`` runs: the ``stale`` runs (their own deps or params changed) and,
    downstream, every run reading an output the edit can change. ``dag`` is upstream first."""
    own = set(stale)
    ran: list[str] = []
    changed: set[str] = set()
    for run in dag:
        if run.name in own or any(_overlap(r, c) for r in run.reads for c in changed):
            ran.append(run.name)
            changed |= changed_outputs(run, changes)
    return ran


def minimum(dag: Sequence[Run], changes: Mapping[str, tuple[str, ...] | None]) -> list[str]:
    """The runs whose outputs the edit can change (it must rerun them)."""
    unknown = sorted(set(changes) - {n for run in dag for n in (run.key, run.name)})
    if unknown:
        raise ValueError(f"declared runs {unknown} are not in the DAG")
    for run in dag:
        names = run.changes(changes)
        missing = sorted(set(names or ()) - {PurePosixPath(w).name for w in run.writes})
        if missing:
            raise ValueError(f"{run.name} has no outputs named {missing}")
    return [run.name for run in dag if run.declared(changes)]


def critical_path(dag: Sequence[Run], seconds: Mapping[str, float]) -> tuple[float, list[str]]:
    """The longest chain of runs (by ``seconds``): no number of jobs finishes sooner."""
    finish: dict[str, float] = {}
    before: dict[str, str | None] = {}
    for run in dag:
        ups = [u for u in run.upstream if u in finish]
        prev = max(ups, key=lambda u: finish[u], default=None)
        before[run.name] = prev
        finish[run.name] = (finish[prev] if prev else 0.0) + seconds[run.name]
    last = max(finish, key=lambda n: finish[n])
    path, node = [], before[last]
    while node is not None:
        path.append(node)
        node = before[node]
    return finish[last], [*path[::-1], last]


def schedule(dag: Sequence[Run], seconds: Mapping[str, float], jobs: int) -> float:
    """Wall time of the DAG on ``jobs`` slots, each run as fast as alone: a ready run
    (every upstream finished) starts as soon as a slot is free, in ``dag`` order."""
    position = {run.name: i for i, run in enumerate(dag)}
    waiting = {run.name: {u for u in run.upstream if u in position} for run in dag}
    ready = [position[n] for n, ups in waiting.items() if not ups]
    heapq.heapify(ready)
    running: list[tuple[float, str]] = []
    now = 0.0
    while ready or running:
        while ready and len(running) < jobs:
            name = dag[heapq.heappop(ready)].name
            heapq.heappush(running, (now + seconds[name], name))
        now, done = heapq.heappop(running)
        for name, ups in waiting.items():
            if done in ups:
                ups.discard(done)
                if not ups:
                    heapq.heappush(ready, position[name])
    return now


# --- the clone ------------------------------------------------------------------------


def _env() -> dict[str, str]:
    from flows.dvc_dag import dvc_env

    env = dvc_env()  # stage commands say ``python``: the interpreter running the bench
    env.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    return env


def _dvc(cwd: Path, *args: str) -> str:
    proc = subprocess.run(
        [sys.executable, "-m", "dvc", *args], cwd=cwd, env=_env(), capture_output=True, text=True
    )
    if proc.returncode != 0:
        raise RuntimeError(f"dvc {' '.join(args)} failed in {cwd}:\n{proc.stdout}{proc.stderr}")
    return proc.stdout


def clone_with_outputs(dest: Path) -> Path:
    """A clone of HEAD with every committed output checked out, its DVC cache filled from
    this repository's cache through a local remote (read, never written)."""
    cache = _dvc(ROOT, "cache", "dir").strip()
    subprocess.run(["git", "clone", "--quiet", str(ROOT), str(dest)], check=True)
    _dvc(dest, "remote", "add", "--local", "--default", "here", cache)
    _dvc(dest, "config", "--local", "cache.type", "symlink")  # a run replaces, never writes through
    _dvc(dest, "pull", "--quiet")
    return dest


def stale(root: Path) -> set[str]:
    """The runs ``dvc status`` finds stale (every dvc.yaml of the repository)."""
    return set(json.loads(_dvc(root, "status", "--json") or "{}"))


def load_dag(root: Path) -> list[Run]:
    """Every run of ``root``'s DAG, upstream first, with the paths it reads and writes."""
    from dvc.dependency.param import ParamsDependency
    from dvc.repo import Repo

    from flows.dvc_dag import address, stage_order

    def rel(paths: Iterable[Any]) -> frozenset[str]:
        # not resolved: a checked-out output is a symlink into the cache
        return frozenset(Path(os.path.relpath(p.fs_path, root)).as_posix() for p in paths)

    io: dict[str, tuple[frozenset[str], frozenset[str]]] = {}
    with Repo(str(root)) as repo:
        for s in repo.index.stages:
            name = address(s, root)
            if name and getattr(s, "cmd", None):
                deps = [d for d in s.deps if not isinstance(d, ParamsDependency)]
                io[name] = (rel(deps), rel(s.outs))
    return [Run(i.name, i.upstream, *io[i.name]) for i in stage_order(root)]


def time_run(root: Path, name: str) -> tuple[float, float]:
    """Wall and CPU seconds of one ``dvc repro --single-item --force`` of ``name`` in
    ``root`` (CPU: of DVC and the stage, which a busy machine inflates less)."""
    cpu = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    _dvc(root, "repro", "--single-item", "--force", name)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, after.ru_utime + after.ru_stime - cpu.ru_utime - cpu.ru_stime


@dataclass(frozen=True)
class Measured:
    edit: Edit
    stale: list[str]  # what dvc status lists
    reruns: list[str]  # what dvc repro runs
    minimum: list[str]
    upper: list[str]  # what dvc repro runs if every rerun's outputs changed


def measure_edit(root: Path, edit: Edit, before: Iterable[str] = ()) -> Measured:
    """Apply ``edit`` in the clone ``root``, read the DAG (an edited list param may add
    runs) and ``dvc status``, undo it; ``before`` is what was stale before the edit (left
    out)."""
    path = root / edit.file
    path.write_text(edit.change(path.read_text()))
    try:
        dag = load_dag(root)
        found = stale(root) - set(before)
    finally:
        subprocess.run(["git", "checkout", "--quiet", "--", edit.file], cwd=root, check=True)
    every = {run.key: None for run in dag}
    return Measured(
        edit,
        [run.name for run in dag if run.name in found],
        reruns(dag, found, edit.changes),
        minimum(dag, edit.changes),
        reruns(dag, found, every),
    )


def measure_jobs(dest: Path) -> dict[str, Any]:
    """The whole DAG through the flow, ``--force --jobs 1`` then ``--jobs 2``, in a fresh
    clone of HEAD (empty DVC cache): wall seconds of each."""
    subprocess.run(["git", "clone", "--quiet", str(ROOT), str(dest)], check=True)
    walls = {}
    for jobs in (1, 2):
        log.info("whole DAG, python -m flows.pipeline --force --jobs %d", jobs)
        start = time.perf_counter()
        proc = subprocess.run(
            [sys.executable, "-m", "flows.pipeline", "--force", "--jobs", str(jobs)],
            cwd=dest,
            env=_env(),
            capture_output=True,
            text=True,
        )
        if proc.returncode != 0:
            raise RuntimeError(f"flows.pipeline --jobs {jobs} failed:\n{proc.stderr[-4000:]}")
        walls[str(jobs)] = time.perf_counter() - start
    head = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=dest, capture_output=True, text=True
    ).stdout.strip()
    when = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    return {"commit": head, "measured": when, "wall_seconds": walls}


# --- the rows -------------------------------------------------------------------------


def _listed(names: Sequence[str], seconds: Mapping[str, float], limit: int = 12) -> str:
    """``explain ×3 116 s, compare 40 s``: the runs of a stage folded, longest first."""
    groups: dict[str, list[str]] = {}
    for n in names:
        groups.setdefault(n.split("@")[0].replace(DIGITS, "digits:"), []).append(n)
    parts = sorted(
        ((sum(seconds[n] for n in ns), k, ns) for k, ns in groups.items()), key=lambda t: -t[0]
    )
    text = [f"{k}{f' ×{len(ns)}' if len(ns) > 1 else ''} {s:.0f} s" for s, k, ns in parts]
    more = f", +{len(text) - limit} more" if len(text) > limit else ""
    return ", ".join(text[:limit]) + more if text else "none"


def added_runs(
    results: Sequence[Measured], dag: Sequence[Run], seconds: Mapping[str, float]
) -> dict[str, float]:
    """Seconds of the runs an edit adds (a new value of a unit stage's list, such as
    ``adv_train@0.06``): those of the stage's run at HEAD, which does the same work for
    another value."""
    at_head = {run.key: seconds[run.name] for run in dag if run.name in seconds}
    names = {n for m in results for n in (*m.reruns, *m.minimum, *m.upper)}
    return {n: at_head[n.split("@")[0]] for n in sorted(names - set(seconds))}


@dataclass(frozen=True)
class Timed:
    """Runs missing from pipeline_stages.json (stages added since it was measured), timed
    in the clone beside :data:`REFERENCE`, which pipeline_stages.json has.

    This machine may be busier than when pipeline_stages.json was measured, so a missing
    run's seconds are its CPU seconds here times the reference's wall seconds there per
    CPU second here: the same pace as the rest of the table.
    """

    wall: Mapping[str, float]  # seconds here, the reference's too
    cpu: Mapping[str, float]  # CPU seconds here, the reference's too
    reference_wall: float = 0.0  # the reference's seconds in pipeline_stages.json
    load: float = 0.0  # 15-min load average after the timing

    def _paced(self, here: Mapping[str, float]) -> dict[str, float]:
        return {
            n: v * self.reference_wall / here[REFERENCE] for n, v in here.items() if n != REFERENCE
        }

    @property
    def seconds(self) -> dict[str, float]:
        """Each missing run's seconds at the pace of pipeline_stages.json (by CPU seconds,
        which a busy machine inflates less than wall time)."""
        return self._paced(self.cpu)

    def note(self, names: Iterable[str]) -> str:
        est, by_wall = self.seconds, self._paced(self.wall)
        here = [
            f"{n} ≈ {est[n]:.0f} s (by wall instead {by_wall[n]:.0f} s; here {self.wall[n]:.0f} s "
            f"wall, {self.cpu[n]:.0f} CPU s)"
            for n in dict.fromkeys(names)
            if n in est
        ]
        if not here:
            return ""
        return (
            f"; not in {STAGE_TIMES.name}: {', '.join(here)}, at the pace of {REFERENCE} "
            f"({self.reference_wall:.0f} s there, {self.wall[REFERENCE]:.0f} s wall and "
            f"{self.cpu[REFERENCE]:.0f} CPU s here; 15-min load {self.load:.1f} on "
            f"{os.cpu_count()} cores)"
        )


def edit_rows(
    results: Sequence[Measured],
    seconds: Mapping[str, float],
    timed: Timed,
    before: Iterable[str] = (),
) -> list[Row]:
    """Per edit, what ``dvc repro`` runs against its minimum; for :data:`ADD_EPS` also
    against one full attack run. ``before``: runs stale at HEAD, left out."""
    already = f"; stale at HEAD already, left out: {', '.join(sorted(before))}" if before else ""
    rows = []
    for m in results:
        cost = sum(seconds[n] for n in m.reruns)
        least = sum(seconds[n] for n in m.minimum)
        waste = [n for n in m.reruns if n not in m.minimum]
        missed = [n for n in m.minimum if n not in m.reruns]
        upper = sum(seconds[n] for n in m.upper)
        note = (
            f"{m.edit.what}: dvc status {len(m.stale)} runs, dvc repro {len(m.reruns)} runs "
            f"{cost:.0f} s ({_listed(m.reruns, seconds)}); minimum {len(m.minimum)} runs "
            f"{least:.0f} s; rerun though their output cannot change: "
            f"{_listed(waste, seconds)} ({m.edit.why})"
        )
        if missed:
            note += f"; NOT rerun though their output can change: {', '.join(missed)}"
        if upper > cost:
            note += f"; {upper:.0f} s if every rerun's outputs changed"
        note += timed.note([*m.reruns, *m.minimum]) + already
        rows.append(
            Row(
                f"edit: {m.edit.name}",
                "minimum: the runs whose output it can change",
                "rerun time ratio (dvc repro/minimum)",
                cost,
                least,
                1.0 if least > 0 else None,
                higher_is_better=False,
                note=note,
            )
        )
        if m.edit.name == ADD_EPS:
            attack, grid = seconds["attack"], _grid_size(m.edit)
            rows.append(
                Row(
                    f"edit: {ADD_EPS}",
                    "one full attack run",
                    "time ratio (edit/attack run)",
                    cost,
                    attack,
                    EPS_TARGET,
                    higher_is_better=False,
                    note=(
                        f"{cost:.0f} s vs attack {attack:.0f} s; the attack stage alone reruns "
                        f"all {grid} eps (1.00 of a run, per-eps units would do 1/{grid} = "
                        f"{1 / grid:.2f}), and every reader of its store reruns"
                    ),
                )
            )
    return rows


def _grid_size(edit: Edit) -> int:
    params = yaml.safe_load(edit.change((ROOT / "params.yaml").read_text()))
    return len(params["attack"]["eps"])


def jobs_rows(dag: Sequence[Run], seconds: Mapping[str, float], timed: Timed) -> list[Row]:
    """--jobs 2 against --jobs 1 and the critical path: computed, and measured if stored."""
    serial = sum(seconds[run.name] for run in dag)
    longest, path = critical_path(dag, seconds)
    two = schedule(dag, seconds, 2)
    chain = " → ".join(path)
    rows = [
        throughput_row(
            "whole DAG, --jobs 2 (computed: 2-slot schedule of the runs' seconds)",
            "--jobs 1 (sum of the runs' seconds)",
            "speed-up (jobs 1/jobs 2)",
            two,
            serial,
            None,
            note=(
                f"computed, not measured: {two / 60:.1f} vs {serial / 60:.1f} min for "
                f"{len(dag)} runs, each as fast as alone (2 shared cores do not give that: "
                "every stage already uses both through torch threads)"
                f"{timed.note(seconds)}"
            ),
        ),
        Row(
            "whole DAG, --jobs 2 (computed)",
            "critical path (computed)",
            "time ratio (jobs 2/critical path)",
            two,
            longest,
            None,
            higher_is_better=False,
            note=(
                f"computed: {two / 60:.1f} vs {longest / 60:.1f} min; best possible speed-up "
                f"at any --jobs {serial / longest:.2f} (sum/critical path); path: {chain}"
            ),
        ),
    ]
    if JOBS_FILE.exists():
        stored = json.loads(JOBS_FILE.read_text())
        one, two_m = stored["wall_seconds"]["1"], stored["wall_seconds"]["2"]
        stamp = f"measured at {stored['commit']} on {stored['measured']}"
        rows += [
            throughput_row(
                "whole DAG, --jobs 2 (measured: flows.pipeline --force)",
                "--jobs 1 (measured, same clone)",
                "speed-up (jobs 1/jobs 2)",
                two_m,
                one,
                None,
                note=f"{stamp}: {two_m / 60:.1f} vs {one / 60:.1f} min",
            ),
            Row(
                "whole DAG, --jobs 2 (measured)",
                "critical path (computed)",
                "time ratio (jobs 2/critical path)",
                two_m,
                longest,
                None,
                higher_is_better=False,
                note=f"{stamp}: {two_m / 60:.1f} vs {longest / 60:.1f} min",
            ),
        ]
    return rows


def stage_seconds() -> dict[str, float]:
    if not STAGE_TIMES.exists():
        raise FileNotFoundError(f"{STAGE_TIMES} missing: run `python -m bench pipeline` first")
    return dict(json.loads(STAGE_TIMES.read_text())["stage_seconds"])


def run() -> list[Row]:
    seconds = stage_seconds()
    with tempfile.TemporaryDirectory() as d:
        clone = clone_with_outputs(Path(d) / "advinterp")
        dag = load_dag(clone)
        before = stale(clone)  # runs HEAD's dvc.lock does not cover: none, normally
        if before:
            log.warning("stale at HEAD, left out of every edit: %s", sorted(before))
        results = []
        for edit in EDITS:
            start = time.perf_counter()
            results.append(measure_edit(clone, edit, before))
            log.info("%s: %s (%.0f s)", edit.name, results[-1].reruns, time.perf_counter() - start)
        wall, cpu = {}, {}
        missing = [run.name for run in dag if run.name not in seconds]
        for name in [REFERENCE, *missing] if missing else []:
            log.info("timing %s here (%s)", name, "reference" if name == REFERENCE else "missing")
            wall[name], cpu[name] = time_run(clone, name)
            log.info("%s: %.0f s (%.0f CPU s)", name, wall[name], cpu[name])
        timed = Timed(wall, cpu, seconds[REFERENCE], os.getloadavg()[2])
        seconds.update(timed.seconds)
        seconds.update(added_runs(results, dag, seconds))
    if os.environ.get(JOBS_ENV) == "1":
        with tempfile.TemporaryDirectory() as d:
            JOBS_FILE.write_text(json.dumps(measure_jobs(Path(d) / "advinterp"), indent=2) + "\n")
    return edit_rows(results, seconds, timed, before) + jobs_rows(dag, seconds, timed)
