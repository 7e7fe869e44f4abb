"""A benchmark row and the timing helper every benchmark uses."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class Row:
    """One line of the benchmark table.

    ``ratio`` is always "ours / peer" in the unit named by ``measure`` (e.g. a
    throughput ratio: higher is better; an overhead ratio: lower is better); ``passed``
    compares it with ``target`` in the direction given by ``higher_is_better``. A row
    with ``target=None`` is reported beside its peer without a pass/fail verdict (the
    issue asks for some rows only "beside" a reference, e.g. a detector beside its
    backbone, where no ratio is a meaningful goal).
    """

    stage: str
    peer: str
    measure: str
    ours: float
    theirs: float
    target: float | None
    higher_is_better: bool
    note: str = ""

    @property
    def ratio(self) -> float:
        return self.ours / self.theirs if self.theirs else float("nan")

    @property
    def passed(self) -> bool | None:
        if self.target is None:
            return None
        return self.ratio >= self.target if self.higher_is_better else self.ratio <= self.target

    def as_dict(self) -> dict:
        return {**asdict(self), "ratio": self.ratio, "passed": self.passed}


def throughput_row(
    stage: str,
    peer: str,
    measure: str,
    ours_s: float,
    theirs_s: float,
    target: float | None,
    *,
    work: float = 1,
    note: str = "",
) -> Row:
    """A higher-is-better row from two best times (s) of the same ``work``: ``work / s`` each."""
    return Row(
        stage,
        peer,
        measure,
        work / ours_s,
        work / theirs_s,
        target,
        higher_is_better=True,
        note=note,
    )


def best_time(fn: Callable[[], object], repeat: int = 3, warmup: int = 1) -> float:
    """Fastest of ``repeat`` wall-clock runs after ``warmup`` (the least-disturbed run)."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def interleaved_best(fns: dict[str, Callable[[], object]], repeat: int = 3) -> dict[str, float]:
    """Best time of each function, runs interleaved so machine noise hits all alike."""
    for fn in fns.values():
        fn()
    best = {k: float("inf") for k in fns}
    for _ in range(repeat):
        for k, fn in fns.items():
            start = time.perf_counter()
            fn()
            best[k] = min(best[k], time.perf_counter() - start)
    return best
