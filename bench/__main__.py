"""Run every benchmark: ``python -m bench [names...]``.

Writes ``artifacts/bench/bench.json`` and ``artifacts/bench/bench.md`` (a Markdown
table: stage, peer, ratio, target, pass/fail). Ratios, not absolute times: both
sides of every row are measured in the same run on the same machine.
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import os
import platform
from pathlib import Path

import torch

from bench.rows import Row

BENCHMARKS = ["features", "attack", "dask_scaling"]
OUT = Path("artifacts/bench")
log = logging.getLogger("bench")


def table(rows: list[Row]) -> str:
    lines = [
        "| stage | compared with | measure | ratio | target | result | note |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        sign = "≥" if r.higher_is_better else "≤"
        lines.append(
            f"| {r.stage} | {r.peer} | {r.measure} | {r.ratio:.2f} | {sign} {r.target:g} | "
            f"{'pass' if r.passed else 'FAIL'} | {r.note} |"
        )
    return "\n".join(lines)


def machine() -> str:
    return (
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"torch {torch.__version__}, {torch.get_num_threads()} threads"
    )


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("names", nargs="*", default=BENCHMARKS, help=f"subset of {BENCHMARKS}")
    args = p.parse_args()
    rows: list[Row] = []
    for name in args.names:
        log.info("benchmark %s", name)
        rows += importlib.import_module(f"bench.{name}").run()
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "bench.json").write_text(
        json.dumps({"machine": machine(), "rows": [r.as_dict() for r in rows]}, indent=2) + "\n"
    )
    md = f"Measured on: {machine()}\n\n{table(rows)}\n"
    (OUT / "bench.md").write_text(md)
    log.info("\n%s", md)


if __name__ == "__main__":
    main()
