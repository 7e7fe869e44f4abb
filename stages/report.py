"""Stage ``report``: one offline HTML page of every stage's metrics, tables and figures.

Which files belong to which stage is read from dvc.yaml itself and from each profile's
(``profiles/<name>/dvc.yaml``: their ``desc``, ``metrics`` and ``plots`` entries,
generated from the stage declarations), so a new stage appears in the report by being
declared, with no change here. The findings table comes first, then the side-by-side
comparison of the methods (with its table of scores), then one overview per method (its
key figure and three numbers, declared in ``advinterp/report_overview.py``), then each
method's stages in detail.
"""

from __future__ import annotations

import logging
from pathlib import Path

from advinterp.comparison.tables import overlap_table, read_summary
from advinterp.config.comparison import COMPARISON
from advinterp.config.core import REPORT
from advinterp.report import read_profile_sections, render_report
from advinterp.report_overview import overview_cards
from advinterp.store import atomic_output, read_json
from stages.stage import Stage, StageIO, out, run

log = logging.getLogger("advinterp.stages.report")

STAGE = Stage(
    name="report",
    method=REPORT,
    desc="One offline HTML page gathering every stage's description, metrics, tables and figures.",
    inputs={
        "findings": "artifacts/findings/findings.json",
        "comparison": "artifacts/compare/scores.csv",
    },
    sources={"dvc_yaml": "dvc.yaml"},
    # Cached, not in git: the page embeds every figure; `dvc pull` fetches it.
    outputs={"out": out("artifacts/report/index.html")},
    base=(),
    gathers=True,
)


def build_page(dvc_yaml: Path, findings: Path, comparison: Path) -> str:
    """The page of the results at ``dvc_yaml``'s folder (the repository root)."""
    sections = read_profile_sections(dvc_yaml)
    for section in sections:
        if section.method == COMPARISON.key:  # its table of scores, beside the figures
            table = overlap_table(read_summary(comparison))
            section.tables = {"overlap with each reference: mean ± sd (random)": table}
    headings = {s.method: s.method_title for s in sections}
    cards = overview_cards(dvc_yaml.parent, headings)
    return render_report(
        sections, findings=read_json(findings), lead=(COMPARISON.key,), cards=cards
    )


def main(io: StageIO) -> None:
    page = build_page(io.dvc_yaml, io.findings, io.comparison)
    with atomic_output(io.out) as tmp:
        tmp.write_text(page)
    log.info("report -> %s (%d kB)", io.out, len(page.encode()) // 1024)


if __name__ == "__main__":
    run(STAGE, main)
