"""``pipeline``: the whole embedded DAG end to end, a no-op rerun, and the flow's overhead.

In a fresh ``git clone`` of this repository's HEAD (empty DVC cache), the README's main
job:

1. ``dvc repro --force``: every stage run of both profiles (without ``--force`` a stage
   whose outputs are all small files committed to git, e.g. ``accuracy``, is skipped once
   its upstream reproduces the locked hashes); the default profile's time against the
   goal of all five methods in 15 minutes on 2 cores, the digits profile's against 10
   minutes on top, and each stage's share (from the moment DVC announces it to the next);
2. ``python -m flows.pipeline`` (ephemeral Prefect API) where every stage is current:
   its overhead over a no-op ``dvc repro`` of the same clone, reported (the no-op
   itself against its budget is :mod:`bench.noop`).

Uncommitted changes are not benchmarked: commit first. Takes ~15-25 min on 2 cores.
"""

from __future__ import annotations

import json
import logging
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.rows import Row
from flows.dvc_dag import dvc_env

ROOT = Path(__file__).resolve().parents[1]
GOAL_SECONDS = 15 * 60
DIGITS_GOAL_SECONDS = 10 * 60  # the digits profile, on top of the default
RUNNING = re.compile(r"Running stage '([^']+)'")
log = logging.getLogger("bench.pipeline")


def _env() -> dict[str, str]:
    env = dvc_env()  # stage commands say ``python``/``dvc``: the interpreter running the bench
    env.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    return env


def _timed(cmd: list[str], cwd: Path) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, cwd=cwd, env=_env(), check=True, capture_output=True, text=True)
    return time.perf_counter() - start


def repro_with_stage_times(cwd: Path) -> tuple[float, dict[str, float]]:
    """Run ``dvc repro --force``, returning its wall time and seconds per stage."""
    start = time.perf_counter()
    marks: list[tuple[str, float]] = []
    proc = subprocess.Popen(
        [sys.executable, "-m", "dvc", "repro", "--force"],
        cwd=cwd,
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert proc.stdout is not None
    tail: list[str] = []
    for line in proc.stdout:
        tail = [*tail[-40:], line]
        m = RUNNING.search(line)
        if m:
            marks.append((m.group(1), time.perf_counter()))
            log.info("stage %s (%.0f s in)", m.group(1), marks[-1][1] - start)
    if proc.wait() != 0:
        raise RuntimeError("dvc repro failed in the benchmark clone:\n" + "".join(tail))
    end = time.perf_counter()
    stops = [t for _, t in marks[1:]] + [end]
    return end - start, {name: stop - t for (name, t), stop in zip(marks, stops, strict=True)}


def by_profile(stages: dict[str, float]) -> dict[str, tuple[dict[str, float], int]]:
    """Per profile: seconds per stage name (its seeds summed) and the number of runs."""
    seconds: dict[str, dict[str, float]] = {}
    runs: dict[str, int] = {}
    for address, spent in stages.items():
        profile = address.split("/")[1] if ":" in address else "default"
        name = address.rsplit(":", 1)[-1].split("@")[0]
        group = seconds.setdefault(profile, {})
        group[name] = group.get(name, 0.0) + spent
        runs[profile] = runs.get(profile, 0) + 1
    return {p: (group, runs[p]) for p, group in seconds.items()}


def _shares(group: dict[str, float], total: float) -> str:
    ranked = sorted(group.items(), key=lambda kv: -kv[1])
    return ", ".join(f"{k} {100 * v / total:.0f}%" for k, v in ranked if v / total >= 0.02)


def run() -> list[Row]:
    with tempfile.TemporaryDirectory() as d:
        clone = Path(d) / "advinterp"
        subprocess.run(["git", "clone", "--quiet", str(ROOT), str(clone)], check=True)
        wall, stages = repro_with_stage_times(clone)
        noop = min(_timed([sys.executable, "-m", "dvc", "repro"], clone) for _ in range(3))
        flow = min(_timed([sys.executable, "-m", "flows.pipeline"], clone) for _ in range(2))
    out = ROOT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "pipeline_stages.json").write_text(
        json.dumps({"wall_seconds": wall, "stage_seconds": stages}, indent=2) + "\n"
    )
    profiles = by_profile(stages)
    (birds, birds_runs), (digits, digits_runs) = profiles["default"], profiles["digits"]
    birds_s, digits_s = sum(birds.values()), sum(digits.values())
    return [
        Row(
            "default profile (dvc repro --force, the birds)",
            "goal: 15 min on 2 cores",
            "time ratio (wall/goal)",
            birds_s,
            GOAL_SECONDS,
            1.0,
            higher_is_better=False,
            note=f"{birds_s / 60:.1f} min for {birds_runs} runs; {_shares(birds, birds_s)}",
        ),
        Row(
            "digits profile (the same dvc repro: profiles/digits/dvc.yaml)",
            "goal: 10 min on top",
            "time ratio (wall/goal)",
            digits_s,
            DIGITS_GOAL_SECONDS,
            1.0,
            higher_is_better=False,
            note=f"{digits_s / 60:.1f} min for {digits_runs} runs; {_shares(digits, digits_s)}",
        ),
        Row(
            "Prefect flow, every stage skipped",
            "no-op dvc repro",
            "time ratio (flow/repro)",
            flow,
            noop,
            None,
            higher_is_better=False,
            note=(
                f"{flow:.1f} s vs {noop:.2f} s: one `dvc status`, then per stage a Prefect "
                "task and its artifacts, plus the ephemeral Prefect API's start-up"
            ),
        ),
    ]
