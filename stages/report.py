"""Stage ``report``: one offline HTML page of every stage's metrics, tables and figures.

Which files belong to which stage is read from dvc.yaml itself and from each profile's
(``profiles/<name>/dvc.yaml``: their ``desc``, ``metrics`` and ``plots`` entries,
generated from the stage declarations), so a new stage appears in the report by being
declared, with no change here. The findings table comes first.
"""

from __future__ import annotations

import logging

from advinterp.config.core import REPORT
from advinterp.report import read_profile_sections, render_report
from advinterp.store import atomic_output, read_json
from stages.stage import Stage, StageIO, out, run

log = logging.getLogger("advinterp.stages.report")

STAGE = Stage(
    name="report",
    method=REPORT,
    desc="One offline HTML page gathering every stage's description, metrics, tables and figures.",
    inputs={"findings": "artifacts/findings/findings.json"},
    sources={"dvc_yaml": "dvc.yaml"},
    # Cached, not in git: the page embeds every figure; `dvc pull` fetches it.
    outputs={"out": out("artifacts/report/index.html")},
    base=(),
    gathers=True,
)


def main(io: StageIO) -> None:
    sections = read_profile_sections(io.dvc_yaml)
    page = render_report(sections, findings=read_json(io.findings))
    with atomic_output(io.out) as tmp:
        tmp.write_text(page)
    log.info("report of %d stages -> %s (%d kB)", len(sections), io.out, len(page) // 1024)


if __name__ == "__main__":
    run(STAGE, main)
