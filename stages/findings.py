"""Stage ``findings``: each paper's headline claims beside the paper's number, over seeds.

Reads the metrics of every seed of the stages that decide a claim (the birds' seeded
stages, the digits profile's runs) and evaluates the claims of
:mod:`advinterp.analysis.claims` (:mod:`advinterp.analysis.findings`): ``findings.json``
(rows with every seed's number), ``findings.md`` (the table the README and the report
show), ``tables/<doc>.md`` (the papers' own tables beside ours, :data:`TABLES`, one file per
method page) and the
verdict counts for ``dvc metrics``.
"""

from __future__ import annotations

import logging

from advinterp.analysis.claims import CLAIMS, SETTINGS, TABLES, settings_table
from advinterp.analysis.findings import (
    findings_table,
    render_markdown,
    render_settings,
    verdict_counts,
)
from advinterp.analysis.seed_tables import fill, render
from advinterp.config.core import FINDINGS
from advinterp.store import atomic_output, read_json, write_json, write_text
from stages.stage import Stage, StageIO, metrics, run, table

log = logging.getLogger("advinterp.stages.findings")

SOURCES = {
    "accuracy": "artifacts/accuracy/metrics.json",
    "distances": "artifacts/distances/metrics.json",
    "explain_eval": "artifacts/explain_eval/metrics.json",
    "a2e_explain": "artifacts/a2e_explain/metrics.json",
    "a2e_robust": "artifacts/a2e_robust/metrics.json",
    "digits_train": "artifacts/digits/train/metrics.json",
    "digits_lan_detect": "artifacts/digits/lan_detect/metrics.json",
    "digits_igan_train": "artifacts/digits/igan_train/metrics.json",
    "digits_igan_vulnerability": "artifacts/digits/igan_vulnerability/metrics.json",
    "digits_pooling_study": "artifacts/digits/pooling_study/metrics.json",
}

STAGE = Stage(
    name="findings",
    method=FINDINGS,
    desc="Each paper's headline claims: the paper's number, ours as mean ± sd over seeds, "
    "and a verdict the spread supports (reproduced only beyond 2 sd).",
    inputs=SOURCES,
    per_seed=tuple(SOURCES),
    outputs={
        "rows": table("artifacts/findings/findings.json"),
        "markdown": table("artifacts/findings/findings.md"),
        "tables": table("artifacts/findings/tables"),
        "metrics": metrics("artifacts/findings/metrics.json"),
    },
    base=(),
)


def main(io: StageIO) -> None:
    paths = {flag: list(io.seeds(flag).values()) for flag in SOURCES}
    runs = {flag: [read_json(p) for p in found] for flag, found in paths.items()}
    origins = {flag: ", ".join(map(str, found)) for flag, found in paths.items()}
    rows = findings_table(CLAIMS, runs, origins)
    settings = settings_table(SETTINGS, runs, origins)
    tables = [fill(t, runs[t.source], origins[t.source]) for t in TABLES]
    write_json(io.rows, {"findings": rows, "settings": settings, "tables": tables})
    write_text(io.markdown, render_markdown(rows) + "\n" + render_settings(settings))
    with atomic_output(io.tables) as tmp:  # one page per method: docs/<doc>.md include it
        tmp.mkdir()
        for doc in sorted({t["doc"] for t in tables}):
            mine = [render(t) for t in tables if t["doc"] == doc]
            (tmp / f"{doc}.md").write_text("\n".join(mine))
    write_json(io.metrics, verdict_counts(rows))
    for r in rows:
        log.info("%s | %s: %s (%s)", r["paper"], r["claim"], r["verdict"], r["reason"])


if __name__ == "__main__":
    run(STAGE, main)
