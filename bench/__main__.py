"""Run the benchmarks: ``python -m bench [names...]`` (all of them by default; ``gpu``
only on a machine with CUDA).

Writes ``bench/results/bench.json`` and ``bench/results/bench.md`` (a Markdown
table: stage, peer, ratio, target, pass/fail), committed so docs/benchmarks.md is
generated from them (``python -m flows.generate docs``). Ratios, not absolute times: both
sides of every row are measured in the same run on the same machine. Running a
subset replaces that subset's rows and keeps the others, each benchmark stamped with
when and on what it was measured, so a table can be completed one quiet slot at a time.
"""

from __future__ import annotations

import argparse
import datetime
import importlib
import json
import logging
import os
import platform
from pathlib import Path

import torch

from advinterp.store import write_text
from bench.rows import Row

# Cheapest first; ``pipeline`` runs the whole DAG end to end (~15-25 min on 2 cores).
BENCHMARKS = [
    "features",
    "storage",
    "attack",
    "adv_train",
    "sje",
    "lime",
    "explainers",
    "detector",
    "dask_scaling",
    "memory",
    "gpu",
    "noop",
    "edit_cost",
    "pipeline",
]
NEEDS_CUDA = {"gpu"}  # left out of a plain ``python -m bench`` on a machine without CUDA
OUT = Path(__file__).resolve().parent / "results"
log = logging.getLogger("bench")


def _cell(value: float | None, fmt: str = ".2f") -> str:
    return "—" if value is None else format(value, fmt)


def table(results: dict[str, dict]) -> str:
    """Markdown table of every stored benchmark's rows, in :data:`BENCHMARKS` order."""
    lines = [
        "| stage | compared with | measure | ratio | target | result | note |",
        "|---|---|---|---|---|---|---|",
    ]
    for name in sorted(results, key=lambda n: BENCHMARKS.index(n) if n in BENCHMARKS else 99):
        for r in results[name]["rows"]:
            sign = "≥" if r["higher_is_better"] else "≤"
            target = "report" if r["target"] is None else f"{sign} {r['target']:g}"
            verdict = {None: "—", True: "pass", False: "FAIL"}[r["passed"]]
            lines.append(
                f"| {r['stage']} | {r['peer']} | {r['measure']} | {_cell(r['ratio'])} | "
                f"{target} | {verdict} | {r['note']} |"
            )
    return "\n".join(lines)


def machine() -> str:
    load = f", load {os.getloadavg()[0]:.1f}" if hasattr(os, "getloadavg") else ""
    gpu = f", {torch.cuda.get_device_name()}" if torch.cuda.is_available() else ""
    return (
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores{gpu}, "
        f"torch {torch.__version__}, {torch.get_num_threads()} threads{load}"
    )


def _stored(path: Path) -> dict[str, dict]:
    if not path.exists():
        return {}
    data = json.loads(path.read_text())
    return data.get("benchmarks", {}) if isinstance(data, dict) else {}


def default_names() -> list[str]:
    """What a plain ``python -m bench`` runs: every benchmark this machine can run."""
    return [n for n in BENCHMARKS if n not in NEEDS_CUDA or torch.cuda.is_available()]


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("names", nargs="*", default=default_names(), help=f"subset of {BENCHMARKS}")
    args = p.parse_args()
    unknown = sorted(set(args.names) - set(BENCHMARKS))
    if unknown:
        p.error(f"unknown benchmark(s) {unknown}; choose from {BENCHMARKS}")
    OUT.mkdir(parents=True, exist_ok=True)
    results: dict[str, dict] = {}
    for name in args.names:
        log.info("benchmark %s", name)
        when = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
        start_machine = machine()
        rows: list[Row] = importlib.import_module(f"bench.{name}").run()
        # Re-read just before writing: another `python -m bench` run at the same time
        # keeps the rows it wrote meanwhile. Written after every benchmark: a long run
        # that is interrupted keeps its rows.
        results = _stored(OUT / "bench.json")
        results[name] = {
            "measured": when,
            "machine": start_machine,
            "rows": [r.as_dict() for r in rows],
        }
        write_text(OUT / "bench.json", json.dumps({"benchmarks": results}, indent=2) + "\n")
    results = _stored(OUT / "bench.json")
    stamps = "\n".join(
        f"- {n}: {results[n]['measured']} on {results[n]['machine']}"
        for n in BENCHMARKS
        if n in results
    )
    md = f"{table(results)}\n\nMeasured:\n{stamps}\n"
    (OUT / "bench.md").write_text(md)
    log.info("\n%s", md)


if __name__ == "__main__":
    main()
