"""The DAG as DVC declares it, and running one stage of it through ``dvc repro``.

DVC owns caching: the flow never decides what is stale. It asks ``dvc status`` once
which stages are current, and ``dvc repro`` to reproduce the others one at a time
(upstream first), reading from its output whether the stage ran or was skipped.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import networkx as nx
from dvc.repo import Repo


@dataclass(frozen=True)
class StageInfo:
    """What the flow needs to know of a dvc.yaml stage."""

    name: str
    desc: str
    metrics: list[Path] = field(default_factory=list)
    plots: list[Path] = field(default_factory=list)
    upstream: tuple[str, ...] = ()  # the stages whose outputs this one reads

    @property
    def figures(self) -> list[Path]:
        return [p for p in self.plots if p.suffix.lower() in {".png", ".jpg", ".jpeg", ".svg"}]


@dataclass(frozen=True)
class StageResult:
    name: str
    outcome: str  # "ran" | "skipped" | "failed"
    seconds: float
    returncode: int
    tail: str = ""
    started: float = 0.0  # wall-clock times (time.time()) of the stage's task
    finished: float = 0.0


def address(stage: object, root: Path) -> str | None:
    """How ``dvc repro`` run in ``root`` names a stage: ``name`` (``name@item`` for a
    foreach item) in root's dvc.yaml, ``path/dvc.yaml:name`` in another one. DVC's own
    ``addressing`` is relative to the current directory instead."""
    dvcfile = getattr(stage, "path", None)
    if dvcfile is None or not getattr(stage, "name", None):
        return None
    rel = Path(os.path.relpath(dvcfile, root)).as_posix()
    return stage.name if rel == "dvc.yaml" else f"{rel}:{stage.name}"  # type: ignore[attr-defined]


def stage_order(root: Path, targets: list[str] | None = None) -> list[StageInfo]:
    """Stages in dependency order (upstream first), limited to ``targets`` and their upstream."""
    with Repo(str(root)) as repo:
        graph = repo.index.graph  # edges point from a stage to the stages it depends on
        # Addressed as `dvc repro` takes them: `name`, `name@seed` (foreach) and
        # `profiles/<p>/dvc.yaml:name` for the other profiles' files.
        stages = {address(s, root): s for s in graph.nodes if hasattr(s, "cmd") and s.cmd}
        keep = set(stages)
        if targets:
            unknown = [t for t in targets if t not in stages]
            if unknown:
                raise ValueError(f"unknown stage(s) {unknown}; dvc.yaml has {sorted(stages)}")
            keep = set()
            for t in targets:
                keep.add(t)
                keep.update(
                    address(s, root)
                    for s in nx.descendants(graph, stages[t])
                    if address(s, root) in stages
                )
        # Upstream first; ties broken by dvc.yaml order, with the report always last.
        position = {name: i for i, name in enumerate(stages)}
        order = [
            s
            for s in nx.lexicographical_topological_sort(
                graph.reverse(copy=True),
                key=lambda s: (
                    getattr(s, "name", "") == "report",
                    position.get(address(s, root), -1),
                ),
            )
            if address(s, root) in keep
        ]
        return [
            StageInfo(
                name=address(s, root),
                desc=s.desc or "",
                metrics=[Path(str(o.def_path)) for o in s.outs if o.metric],
                plots=[Path(str(o.def_path)) for o in s.outs if o.plot],
                upstream=tuple(
                    sorted(
                        address(u, root) for u in graph.successors(s) if address(u, root) in stages
                    )
                ),
            )
            for s in order
        ]


def _dvc(*args: str) -> list[str]:
    """The command line of this interpreter's DVC (the venv's, whatever PATH says)."""
    return [sys.executable, "-m", "dvc", *args]


def dvc_env() -> dict[str, str]:
    """The environment for DVC subprocesses: stage commands (``python -m stages.X``)
    find this interpreter, whatever PATH says."""
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return env


def stale_stages(root: Path) -> set[str] | None:
    """Names of the stages ``dvc status`` finds stale, or None if it could not tell.

    One ``dvc status`` for the whole DAG costs about what one ``dvc repro --single-item``
    does, so the flow asks it once instead of starting DVC per stage just to hear
    "didn't change". Stale stages are the keys of its JSON (``name`` or
    ``path/dvc.yaml:name``); any failure (e.g. another DVC process holds the lock)
    returns None and the flow falls back to ``dvc repro`` for every stage.
    """
    proc = subprocess.run(
        _dvc("status", "--json"), cwd=root, env=dvc_env(), capture_output=True, text=True
    )
    if proc.returncode != 0:
        return None
    try:
        return set(json.loads(proc.stdout or "{}"))
    except json.JSONDecodeError:
        return None


def repro_stage(
    root: Path,
    name: str,
    on_line: Callable[[str], None],
    force: bool = False,
    env: Mapping[str, str] | None = None,
) -> tuple[str, int, str]:
    """Run ``dvc repro --single-item <name>``, streaming its output lines; ``env`` adds
    to the environment of DVC and the stage's command (e.g. ``CUDA_VISIBLE_DEVICES``).

    Returns:
        (outcome, return code, last lines of output); outcome is ran/skipped/failed.
    """
    cmd = _dvc("repro", "--single-item", name)
    if force:
        cmd.append("--force")
    proc = subprocess.Popen(
        cmd,
        cwd=root,
        env={**dvc_env(), **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    ran = False
    tail: list[str] = []
    assert proc.stdout is not None
    for raw in proc.stdout:
        line = raw.rstrip()
        if not line:
            continue
        on_line(line)
        ran = ran or line.startswith(f"Running stage '{name}'")
        tail = [*tail[-19:], line]
    code = proc.wait()
    outcome = "failed" if code else ("ran" if ran else "skipped")
    return outcome, code, "\n".join(tail)
