"""Progress for long loops: a tqdm bar in a terminal, rate/ETA log lines elsewhere.

Stages run under ``dvc repro`` and, through the Prefect flow, in a subprocess whose
output goes to the Prefect logs. A carriage-return bar is unreadable there, so when
stderr is not a terminal the same progress (count, rate, ETA) is logged at intervals.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Iterable, Iterator
from typing import TypeVar

from tqdm.auto import tqdm

T = TypeVar("T")
log = logging.getLogger("advinterp.progress")


def track(
    items: Iterable[T],
    total: int | None = None,
    desc: str = "",
    unit: str = "it",
    log_every: float = 10.0,
) -> Iterator[T]:
    """Iterate ``items`` showing progress; ``total`` counts iterations."""
    if sys.stderr.isatty():
        yield from tqdm(items, total=total, desc=desc, unit=unit, dynamic_ncols=True)
        return
    start = last = time.perf_counter()
    done = logged = 0
    for item in items:
        yield item
        done += 1
        now = time.perf_counter()
        if now - last >= log_every:
            last, logged = now, done
            log.info("%s", _line(desc, done, total, now - start, unit))
    if logged != done:
        log.info("%s", _line(desc, done, total, time.perf_counter() - start, unit))


def _line(desc: str, done: int, total: int | None, elapsed: float, unit: str) -> str:
    rate = done / elapsed if elapsed > 0 else 0.0
    if total:
        eta = (total - done) / rate if rate > 0 else float("inf")
        return f"{desc}: {done}/{total} {unit} ({100 * done / total:.0f}%), {rate:.2f} {unit}/s, ETA {eta:.0f}s"
    return f"{desc}: {done} {unit}, {rate:.2f} {unit}/s, {elapsed:.0f}s"
