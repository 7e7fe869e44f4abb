"""A paper's table beside ours, each cell of ours the mean ± sd over seeds.

The findings table gives one line per claim; the papers' own tables (LAN's Tables 1-2,
InterpretGAN's Tables 1-2) are reproduced whole with :class:`SeedTable`: every cell is
a dotted key of one stage's metrics, read in every seed's run.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from advinterp.analysis.spread import spread
from advinterp.errors import StoreError
from advinterp.markdown import lookup

Metrics = Mapping[str, Any]


@dataclass(frozen=True)
class SeedTable:
    """One table: rows of cells, each cell a metrics key (ours) and the paper's value.

    Attributes:
        title: the table's heading, with the paper's table and dataset.
        doc: the method page it belongs on (``docs/<doc>.md``).
        source: the metrics it reads (a findings input).
        columns: the column headings.
        rows: (label, one (dotted key, paper value or "") per column).
    """

    title: str
    doc: str
    source: str
    columns: tuple[str, ...]
    rows: tuple[tuple[str, tuple[tuple[str, str], ...]], ...]


def _lookup(m: Metrics, dotted: str) -> float | None:
    """One number of ``m`` by a dotted key (keys holding dots, ``eps_0.3``, match whole);
    None where the stage wrote null (e.g. a rate over no fooled image)."""
    value = lookup(m, dotted)
    return None if value is None else float(value)


def fill(table: SeedTable, runs: Sequence[Metrics], origin: str = "") -> dict[str, Any]:
    """The table with every cell's spread over ``runs`` (one metrics mapping per seed).

    A seed whose value is null (nothing to measure in that run) is left out of the cell's
    spread, whose ``n`` then says how many seeds it holds; a cell null in every seed has
    ``ours`` None.
    """
    rows = []
    for label, cells in table.rows:
        out = []
        for key, paper in cells:
            try:
                found = [v for v in (_lookup(m, key) for m in runs) if v is not None]
            except (KeyError, TypeError) as err:
                raise StoreError(f"{origin or table.source}: no '{key}' ({err})") from None
            out.append({"key": key, "ours": spread(found) if found else None, "paper": paper})
        rows.append({"label": label, "cells": out})
    return {
        "title": table.title,
        "doc": table.doc,
        "columns": list(table.columns),
        "rows": rows,
        "seeds": len(runs),
    }


def cell_text(ours: Mapping[str, Any] | None, seeds: int) -> str:
    """``mean ± sd``, with ``(k of n seeds)`` when some seeds had nothing to measure."""
    if ours is None:
        return "—"
    text = f"{ours['mean']:.3f} ± {ours['sd']:.3f}"
    return text if ours["n"] == seeds else f"{text} ({ours['n']} of {seeds} seeds)"


def render(filled: Mapping[str, Any]) -> str:
    """Markdown: each column shown as ``ours (paper)``, ours as mean ± sd."""
    head = "| | " + " | ".join(filled["columns"]) + " |"
    rule = "|---|" + "---|" * len(filled["columns"])
    lines = [f"**{filled['title']}** (ours: mean ± sd over {filled['seeds']} seeds; "
             "the paper's number in square brackets)", "", head, rule]  # fmt: skip
    for row in filled["rows"]:
        cells = []
        for c in row["cells"]:
            text = cell_text(c["ours"], filled["seeds"])
            cells.append(f"{text} [{c['paper']}]" if c["paper"] else text)
        lines.append(f"| {row['label']} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
