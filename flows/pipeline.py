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
``PREFECT_API_URL=http://127.0.0.1:4200/api python -m flows.pipeline``.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_table_artifact

from flows.dvc_dag import StageInfo, StageResult, repro_stage, stage_order, stale_stages
from flows.publish import publish_figures, publish_metrics, publish_report_link

REPORT = Path("artifacts/report/index.html")


# What `dvc repro` prints when another DVC process holds the workspace lock
# (dvc/lock.py) or the read/write lock of an output or dependency (dvc/rwlock.py).
DVC_LOCK_ERRORS = ("Unable to acquire lock", "is busy, it is being blocked by")


class StageFailedError(RuntimeError):
    """A DVC stage exited non-zero; its last output lines are in the message."""


@task(task_run_name="{info.name}", retries=0)
def run_stage(
    root: Path, info: StageInfo, force: bool = False, current: bool = False
) -> StageResult:
    """Reproduce one stage with DVC and publish its metrics and figures.

    ``current``: DVC already found the stage and its inputs up to date in this flow
    run, so it is reported skipped without another ``dvc repro``.
    """
    logger = get_run_logger()
    start = time.perf_counter()
    if current:
        outcome, code, tail = "skipped", 0, ""
        logger.info("Stage '%s' didn't change (dvc status), skipping", info.name)
    else:
        outcome, code, tail = repro_stage(root, info.name, logger.info, force=force)
    seconds = time.perf_counter() - start
    if outcome == "failed" and any(text in tail for text in DVC_LOCK_ERRORS):
        holder = next((ln.strip() for ln in tail.splitlines() if ln.strip().startswith("(PID")), "")
        raise StageFailedError(
            f"stage '{info.name}' not run: another dvc repro holds the lock of {root}; "
            f"wait for it or run again{f' (held by {holder})' if holder else ''}"
        )
    if outcome == "failed":
        raise StageFailedError(f"stage '{info.name}' failed (exit {code}):\n{tail}")
    logger.info("stage %s %s in %.1fs", info.name, outcome, seconds)
    publish_metrics(root, info.name, info.metrics)
    publish_figures(root, info.name, info.figures)
    return StageResult(info.name, outcome, seconds, code)


@flow(name="advinterp", log_prints=False)
def pipeline(
    repo: str = ".", targets: list[str] | None = None, force: bool = False
) -> list[StageResult]:
    """Run the DAG (or ``targets`` and their upstream) stage by stage, upstream first."""
    root = Path(repo).resolve()
    logger = get_run_logger()
    stages = stage_order(root, targets)
    logger.info("%d stages: %s", len(stages), ", ".join(s.name for s in stages))
    stale = None if force else stale_stages(root)  # None: ask dvc repro for every stage
    results: list[StageResult] = []
    ran: set[str] = set()
    try:
        for info in stages:
            # Current at the start stays current only if nothing it reads was rebuilt since.
            current = (
                stale is not None and info.name not in stale and not ran.intersection(info.upstream)
            )
            result = run_stage.with_options(name=info.name)(root, info, force, current)
            results.append(result)
            if result.outcome == "ran":
                ran.add(info.name)
    finally:
        done = {r.name for r in results}
        rows = [
            {"stage": r.name, "outcome": r.outcome, "seconds": round(r.seconds, 2)} for r in results
        ] + [
            {"stage": s.name, "outcome": "failed" if i == 0 else "not run", "seconds": None}
            for i, s in enumerate(s for s in stages if s.name not in done)
        ]
        create_table_artifact(
            rows, key="stage-outcomes", description="What DVC did with each stage"
        )
        publish_report_link(root / REPORT)
    return results


def main() -> None:
    p = argparse.ArgumentParser(description="Run the advinterp DAG as a Prefect flow.")
    p.add_argument("targets", nargs="*", help="stages to reproduce (default: all)")
    p.add_argument("--repo", default=".", help="repository root holding dvc.yaml")
    p.add_argument(
        "--force", action="store_true", help="rerun stages even if DVC finds them current"
    )
    args = p.parse_args()
    pipeline(repo=args.repo, targets=args.targets or None, force=args.force)


if __name__ == "__main__":
    main()
