"""Turning a stage's metrics and figures into Prefect artifacts."""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterator
from pathlib import Path

from prefect.artifacts import create_link_artifact, create_markdown_artifact, create_table_artifact

from advinterp.report import flatten

# Figures above this size are linked by path instead of embedded in the markdown artifact.
MAX_EMBED_BYTES = 400_000


def artifact_key(*parts: str) -> str:
    """Prefect keys allow lowercase letters, digits and dashes only."""
    return re.sub(r"-+", "-", re.sub(r"[^a-z0-9]+", "-", "-".join(parts).lower())).strip("-")


def existing_files(root: Path, paths: list[Path]) -> Iterator[tuple[Path, Path]]:
    """``(path, root / path)`` for each declared output path the stage did write."""
    return ((path, root / path) for path in paths if (root / path).is_file())


def publish_metrics(root: Path, stage: str, metrics: list[Path]) -> int:
    """One table artifact of every metric the stage reports; returns the row count."""
    rows = [
        {"file": str(path), "metric": k, "value": v}
        for path, full in existing_files(root, metrics)
        for k, v in flatten(json.loads(full.read_text()), max_list=20).items()
    ]
    if rows:
        create_table_artifact(
            rows, key=artifact_key(stage, "metrics"), description=f"Metrics of stage `{stage}`"
        )
    return len(rows)


def publish_figures(root: Path, stage: str, figures: list[Path]) -> int:
    """One markdown artifact showing the stage's figures (embedded when small)."""
    parts = []
    for path, full in existing_files(root, figures):
        data = full.read_bytes()
        if len(data) <= MAX_EMBED_BYTES and path.suffix.lower() == ".png":
            b64 = base64.b64encode(data).decode()
            parts.append(f"### {path}\n\n![{path.name}](data:image/png;base64,{b64})\n")
        else:
            parts.append(f"### {path}\n\n`{full.resolve()}`\n")
    if parts:
        create_markdown_artifact(
            "\n".join(parts),
            key=artifact_key(stage, "figures"),
            description=f"Figures of `{stage}`",
        )
    return len(parts)


def publish_report_link(report: Path) -> bool:
    """A link from the flow run to the offline HTML report, when it exists."""
    if not report.is_file():
        return False
    create_link_artifact(
        report.resolve().as_uri(),
        link_text="advinterp report",
        key="advinterp-report",
        description="The HTML report of every method (open it in a browser on this machine)",
    )
    return True
