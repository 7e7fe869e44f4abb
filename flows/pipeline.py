"""The advinterp Prefect flow: the dvc.yaml DAG, one Prefect task per DVC stage.

Each task is named after its stage and runs ``dvc repro --single-item <stage>``, so
DVC alone decides whether the stage is stale; the task reports ran / skipped /
failed, the duration, the stage's metrics (a table artifact) and figures (a
markdown artifact), and streams the stage's log and progress lines into Prefect.
A stage that one ``dvc status`` at the start found current, and none of whose
upstream stages ran in this flow, is reported skipped without starting DVC again.

Run it without a server (ephemeral)::

    python -m flows.pipeline

or against a local UI: ``prefect server start`` in one terminal, then
``PREFECT_API_URL=http://127.0.0.1:4200/api python -m flows.pipeline``. To start runs
from the UI or ``prefect deployment run``, serve it as a deployment: ``flows/serve.py``.
"""

# No ``from __future__ import annotations`` here: a served run gets the flow function
# pickled by value (its module name is the Flow object), with only the globals its body
# uses, so string annotations such as ``Annotated[...]`` could not be resolved there.
import argparse
import logging
import os
import queue
import sys
import time
from pathlib import Path
from typing import Annotated

import httpx
from prefect import flow, get_run_logger, task
from prefect.artifacts import create_table_artifact
from prefect.cache_policies import NO_CACHE
from prefect.futures import PrefectFuture, wait
from prefect.task_runners import ThreadPoolTaskRunner
from pydantic import Field

from flows.dvc_dag import StageInfo, StageResult, repro_stage, stage_order, stale_stages
from flows.publish import publish_figures, publish_metrics, publish_report_link

REPORT = Path("artifacts/report/index.html")
log = logging.getLogger("advinterp.flow")


# What `dvc repro` prints when another DVC process holds the workspace lock
# (dvc/lock.py) or the read/write lock of an output or dependency (dvc/rwlock.py).
DVC_LOCK_ERRORS = ("Unable to acquire lock", "is busy, it is being blocked by")


class StageFailedError(RuntimeError):
    """A DVC stage exited non-zero; its last output lines are in the message."""


# How long a stage waits for DVC's repository lock, held by a concurrent `dvc repro`
# only while it checks or commits (DVC releases it while a stage's command runs).
LOCK_WAIT_S = 600.0


def _holds_lock(tail: str) -> bool:
    return any(text in tail for text in DVC_LOCK_ERRORS)


@task(task_run_name="{info.name}", retries=0, cache_policy=NO_CACHE)
def run_stage(
    root: Path,
    info: StageInfo,
    force: bool,
    stale: frozenset[str] | None,
    upstream: list[StageResult],
    slots: "queue.Queue[str | None]",
) -> StageResult:
    """Reproduce one stage with DVC and publish its metrics and figures.

    A stage that ``dvc status`` found current at the start (``stale``; None = unknown)
    and none of whose ``upstream`` results ran is reported skipped without starting DVC
    again. Otherwise it takes a slot (a GPU id or None) for as long as ``dvc repro``
    runs, and retries while another ``dvc repro`` of this flow holds DVC's lock.
    """
    logger = get_run_logger()
    start = time.time()
    if (
        stale is not None
        and info.name not in stale
        and not any(r.outcome == "ran" for r in upstream)
    ):
        logger.info("Stage '%s' didn't change (dvc status), skipping", info.name)
        return StageResult(info.name, "skipped", 0.0, 0, started=start, finished=start)
    slot = slots.get()
    start = time.time()  # the stage's own time, not its wait for a slot
    try:
        env = {} if slot is None else {"CUDA_VISIBLE_DEVICES": slot}
        waited, delay = 0.0, 0.5
        while True:
            outcome, code, tail = repro_stage(root, info.name, logger.info, force=force, env=env)
            if not (outcome == "failed" and _holds_lock(tail)) or waited >= LOCK_WAIT_S:
                break
            logger.info("DVC's lock is held by another stage's dvc repro; retrying in %.1fs", delay)
            time.sleep(delay)
            waited, delay = waited + delay, min(delay * 2, 10.0)
    finally:
        slots.put(slot)
    finished = time.time()
    if outcome == "failed" and _holds_lock(tail):
        holder = next((ln.strip() for ln in tail.splitlines() if ln.strip().startswith("(PID")), "")
        raise StageFailedError(
            f"stage '{info.name}' not run: another dvc repro held the lock of {root} for "
            f"{waited:.0f} s; wait for it or run again{f' (held by {holder})' if holder else ''}"
        )
    if outcome == "failed":
        raise StageFailedError(f"stage '{info.name}' failed (exit {code}):\n{tail}")
    logger.info("stage %s %s in %.1fs", info.name, outcome, finished - start)
    publish_metrics(root, info.name, info.metrics)
    publish_figures(root, info.name, info.figures)
    return StageResult(info.name, outcome, finished - start, code, started=start, finished=finished)


def stage_slots(jobs: int, gpus: list[int] | None) -> "queue.Queue[str | None]":
    """``jobs`` slots for concurrent stages: GPU ids taken in turn from ``gpus`` (each
    concurrent stage sees its own device as ``CUDA_VISIBLE_DEVICES``), or None each."""
    slots: queue.Queue[str | None] = queue.Queue()
    for i in range(jobs):
        slots.put(str(gpus[i % len(gpus)]) if gpus else None)
    return slots


@flow(name="advinterp", log_prints=False, task_runner=ThreadPoolTaskRunner(max_workers=64))
def pipeline(
    repo: str = ".",
    targets: list[str] | None = None,
    force: bool = False,
    jobs: Annotated[int, Field(ge=1)] = 1,
    gpus: list[int] | None = None,
) -> list[StageResult]:
    """Run the DAG (or ``targets`` and their upstream), each stage after the stages it reads.

    Args:
        repo: The repository root holding dvc.yaml (absolute, or relative to where the
            flow runs).
        targets: The stages to reproduce, with whatever they need upstream (dvc repro's
            names: `train`, `explain_eval@1`, `profiles/digits/dvc.yaml:lan_train@0`);
            empty for the whole DAG.
        force: Rerun the stages even where DVC finds them current.
        jobs: How many stages may run at once (independent branches of the DAG), at
            least 1. Each still runs through `dvc repro --single-item`.
        gpus: GPU ids handed to the concurrent stages in turn (CUDA_VISIBLE_DEVICES);
            empty: leave the environment's devices as they are.
    """
    root = Path(repo).resolve()
    logger = get_run_logger()
    stages = stage_order(root, targets)
    logger.info("%d stages, %d at a time: %s", len(stages), jobs, ", ".join(s.name for s in stages))
    stale = None if force else stale_stages(root)  # None: ask dvc repro for every stage
    frozen_stale = None if stale is None else frozenset(stale)
    slots = stage_slots(jobs, gpus)
    futures: dict[str, PrefectFuture[StageResult]] = {}
    try:
        # Submitted upstream first: a task waits (in its thread) only for tasks submitted
        # before it, which already hold threads, so the pool never deadlocks.
        for info in stages:
            ups = [futures[u] for u in info.upstream if u in futures]
            futures[info.name] = run_stage.with_options(name=info.name).submit(
                root, info, force, frozen_stale, ups, slots
            )
        wait(list(futures.values()))
    finally:
        results = [f.result() for f in futures.values() if f.state.is_completed()]
        done = {r.name for r in results}
        failed = {n for n, f in futures.items() if f.state.is_failed()}
        rows = [
            {"stage": r.name, "outcome": r.outcome, "seconds": round(r.seconds, 2)} for r in results
        ] + [
            {
                "stage": s.name,
                "outcome": "failed" if s.name in failed else "not run",
                "seconds": None,
            }
            for s in stages
            if s.name not in done
        ]
        create_table_artifact(
            rows, key="stage-outcomes", description="What DVC did with each stage"
        )
        publish_report_link(root / REPORT)
    for f in futures.values():
        if f.state.is_failed():
            f.result()  # raises the first failed stage's error (upstream first)
    return results


def _at_least_one(text: str) -> int:
    """argparse type of ``--jobs``: an int of at least 1."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def main() -> None:
    """``python -m flows.pipeline [stage ...]``: one flow run, on the ephemeral API unless
    ``PREFECT_API_URL`` names a server."""
    # The temporary server started for an ephemeral run inherits this environment; its
    # telemetry service would otherwise log an error on every run of an offline machine.
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    p = argparse.ArgumentParser(description="Run the advinterp DAG as a Prefect flow.")
    p.add_argument("targets", nargs="*", help="stages to reproduce (default: all)")
    p.add_argument("--repo", default=".", help="repository root holding dvc.yaml")
    p.add_argument(
        "--force", action="store_true", help="rerun stages even if DVC finds them current"
    )
    p.add_argument(
        "--jobs",
        type=_at_least_one,
        default=1,
        help="stages run at once: independent branches of the DAG (at least 1)",
    )
    p.add_argument(
        "--gpus",
        type=lambda t: [int(g) for g in t.split(",")],
        default=None,
        help="GPU ids for the concurrent stages, e.g. 0,1 (CUDA_VISIBLE_DEVICES per stage)",
    )
    args = p.parse_args()
    try:
        pipeline(
            repo=args.repo,
            targets=args.targets or None,
            force=args.force,
            jobs=args.jobs,
            gpus=args.gpus,
        )
    except httpx.HTTPError as err:
        # DVC does not depend on Prefect: what it committed stays valid, and a rerun
        # with the server back skips it. Say so in one line instead of a traceback.
        url = os.environ.get("PREFECT_API_URL", "the ephemeral Prefect API")
        log.error(
            "lost the Prefect API at %s (%s: %s); the stages DVC committed are kept, and a "
            "rerun once the server is back skips them",
            url,
            type(err).__name__,
            err,
        )
        sys.exit(1)


if __name__ == "__main__":
    main()
