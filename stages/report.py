"""Stage ``report``: one offline HTML page of every stage's metrics, tables and figures.

Which files belong to which stage is read from dvc.yaml itself (its ``desc``,
``metrics`` and ``plots`` entries), so a new stage appears in the report by being
declared, with no change here.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from advinterp.errors import StoreError
from advinterp.report import StageSection, render_report
from advinterp.store import atomic_output, read_json
from stages.cli import parser, run

log = logging.getLogger("advinterp.stages.report")


def build() -> argparse.ArgumentParser:
    p = parser(__doc__)
    p.add_argument("--dvc-yaml", type=Path, default=Path("dvc.yaml"))
    p.add_argument("--out", type=Path, required=True, help="HTML file to write")
    return p


def _paths(entries: list[Any] | None) -> list[Path]:
    out = []
    for e in entries or []:
        name = next(iter(e)) if isinstance(e, dict) else e
        if "${" not in str(name):
            out.append(Path(name))
    return out


def read_sections(dvc_yaml: Path) -> list[StageSection]:
    """Each dvc.yaml stage's description, metrics, CSV tables and PNG figures."""
    root = dvc_yaml.parent
    if not dvc_yaml.is_file():
        raise StoreError(f"{dvc_yaml}: not found (--dvc-yaml)")
    try:
        spec_all = yaml.safe_load(dvc_yaml.read_text()) or {}
    except yaml.YAMLError as err:
        raise StoreError(f"{dvc_yaml}: not valid YAML: {' '.join(str(err).split())}") from None
    if not isinstance(spec_all, dict):
        raise StoreError(f"{dvc_yaml}: expected a mapping with a 'stages' key")
    stages = spec_all.get("stages", {})
    sections = []
    for name, spec in stages.items():
        if name == "report":
            continue
        section = StageSection(name=name, desc=str(spec.get("desc", "")))
        for path in _paths(spec.get("metrics")):
            if (root / path).is_file():
                data = read_json(root / path)
                section.metrics.update(data if isinstance(data, dict) else {str(path): data})
        for path in _paths(spec.get("plots")) + [
            p for p in _paths(spec.get("outs")) if p.suffix == ".png"
        ]:
            full = root / path
            if full.is_file() and full.suffix == ".csv":
                section.tables[str(path)] = pd.read_csv(full)
            elif full.is_file() and full.suffix == ".png":
                section.figures.append((str(path), full.read_bytes()))
            elif full.is_dir():
                section.figures += [
                    (str(f.relative_to(root)), f.read_bytes()) for f in sorted(full.glob("*.png"))
                ]
        sections.append(section)
    return sections


def main(args: argparse.Namespace) -> None:
    sections = read_sections(args.dvc_yaml)
    page = render_report(sections)
    with atomic_output(args.out) as tmp:
        tmp.write_text(page)
    log.info("report of %d stages -> %s (%d kB)", len(sections), args.out, len(page) // 1024)


if __name__ == "__main__":
    run(main, build)
