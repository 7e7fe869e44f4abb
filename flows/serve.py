"""Serve the advinterp flow as a Prefect deployment: runs start from the UI or the CLI.

With a Prefect server running (``prefect server start``), in the repository root::

    PREFECT_API_URL=http://127.0.0.1:4200/api python -m flows.serve

registers the deployment ``advinterp/pipeline`` and waits for runs; start one from the
UI (Deployments, then Run, with the parameters form) or from another shell::

    prefect deployment run 'advinterp/pipeline' -p targets='["train"]' -p force=true --watch

Each run is the flow of ``flows/pipeline.py`` (parameters ``repo``, ``targets``,
``force``, ``jobs``) in a subprocess of this one, in this checkout. Runs go one at a
time: DVC locks the repository, so a second run waits for the first to finish.
Ctrl-C stops serving.
"""

from __future__ import annotations

import argparse
from pathlib import Path

DEPLOYMENT = "pipeline"


def main(argv: list[str] | None = None) -> None:
    """Register the deployment and serve its runs until interrupted."""
    p = argparse.ArgumentParser(
        prog="python -m flows.serve",
        description="Serve the advinterp flow as a Prefect deployment.",
    )
    p.add_argument(
        "--repo", default=".", help="repository root holding dvc.yaml (the runs' default)"
    )
    p.add_argument("--name", default=DEPLOYMENT, help="deployment name (default: %(default)s)")
    args = p.parse_args(argv)

    # Imported here, so that --help and a wrong argument answer without loading Prefect.
    from prefect.client.orchestration import get_client
    from prefect.logging import get_logger
    from prefect.settings import PREFECT_API_URL

    from flows.pipeline import pipeline

    logger = get_logger("advinterp.serve")
    root = Path(args.repo).resolve()
    if not (root / "dvc.yaml").is_file():
        p.error(f"no dvc.yaml in {root}")
    url = PREFECT_API_URL.value()
    if not url:
        # Served on the temporary API of this process, runs could be started from nowhere.
        p.error(
            "PREFECT_API_URL is not set: start a server (prefect server start) and run "
            "PREFECT_API_URL=http://127.0.0.1:4200/api python -m flows.serve"
        )
    with get_client(sync_client=True) as client:
        unhealthy = client.api_healthcheck()
    if unhealthy is not None:
        p.error(f"no Prefect API at {url}: {unhealthy}")
    logger.info("serving %s/%s from %s on %s", pipeline.name, args.name, root, url)
    pipeline.serve(
        name=args.name,
        parameters={"repo": str(root)},
        limit=1,  # DVC locks the repository: one run at a time, the next one waits
        pause_on_shutdown=False,
    )


if __name__ == "__main__":
    main()
