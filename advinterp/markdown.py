"""Numbers in the README and docs/, generated from the pipeline's metrics, never typed.

A markdown file marks each generated span with an HTML comment that says what to put
there, and a closing comment::

    test accuracy <!-- g: value artifacts/train/metrics.json test_accuracy .3f -->0.733<!-- /g -->

    <!-- g: csv artifacts/igan_vulnerability/table.csv -->
    | layer | ... |
    <!-- /g -->

:func:`fill` replaces everything between each pair with what the opening comment asks
for; the comments stay, so the file can be filled again after the next ``dvc repro``.
GitHub renders the comments invisibly. Kinds:

- ``value FILE KEY [FMT]``: one number of a JSON file; KEY is dotted (``a.b.0``), FMT a
  format spec (default ``.3g``); ``pct`` as FMT prints a fraction as a percentage.
- ``metrics FILE KEY [KEY ...]``: a two-column table of those keys.
- ``csv FILE [COL ...]``: a CSV as a table (those columns, all by default).
- ``file PATH``: a text file verbatim (e.g. a benchmark table the bench wrote).
- ``text NAME``: a block a caller supplies (e.g. ``dag``, the ``dvc dag --mermaid`` output).
"""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from advinterp.errors import StoreError

SPAN = re.compile(r"<!-- g: (?P<spec>[^>]*?) -->(?P<body>.*?)<!-- /g -->", re.S)


def lookup(data: Any, key: str) -> Any:
    """``data[k1][k2]...`` for a dotted key; list indices allowed.

    Keys that themselves contain dots (``at_0.02``, ``eps_0.01``) are matched whole:
    at each level the longest run of dotted parts that is a key wins.
    """
    parts = key.split(".")
    i = 0
    while i < len(parts):
        if isinstance(data, list):
            try:
                data = data[int(parts[i])]
            except (ValueError, IndexError):
                raise KeyError(key) from None
            i += 1
            continue
        if not isinstance(data, dict):
            raise KeyError(key)
        for j in range(len(parts), i, -1):
            name = ".".join(parts[i:j])
            if name in data:
                data, i = data[name], j
                break
        else:
            raise KeyError(key)
    return data


def format_value(value: Any, fmt: str = ".3g") -> str:
    """A number as text; ``pct`` prints a fraction as a whole percentage."""
    if value is None:
        return "n/a"
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    if fmt == "pct":
        return f"{100 * value:.0f} %"
    return format(value, fmt)


def table(rows: list[list[str]], header: list[str]) -> str:
    """A GitHub-flavoured markdown table."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def csv_table(frame: pd.DataFrame, columns: list[str] | None = None) -> str:
    """A data frame as a markdown table, floats to 3 significant digits."""
    if columns:
        frame = frame[columns]
    rows = [[format_value(v) for v in row] for row in frame.itertuples(index=False)]
    return table(rows, [str(c) for c in frame.columns])


class Sources:
    """Reads (and caches) the files the spans name, relative to ``root``."""

    def __init__(self, root: Path, texts: Mapping[str, Callable[[], str]] | None = None):
        self.root = root
        self.texts = dict(texts or {})
        self._json: dict[str, Any] = {}

    def json(self, path: str) -> Any:
        if path not in self._json:
            full = self.root / path
            if not full.is_file():
                raise StoreError(f"{full}: not found (run dvc repro or dvc pull first)")
            self._json[path] = json.loads(full.read_text())
        return self._json[path]

    def csv(self, path: str) -> pd.DataFrame:
        full = self.root / path
        if not full.is_file():
            raise StoreError(f"{full}: not found (run dvc repro or dvc pull first)")
        return pd.read_csv(full)


def render_span(spec: str, sources: Sources, block: bool) -> str:
    """What one ``<!-- g: spec -->`` span holds."""
    kind, *args = shlex.split(spec)
    if kind == "value":
        path, key, *fmt = args
        data = sources.json(path)
        try:
            return format_value(lookup(data, key), *fmt)
        except (KeyError, IndexError):
            raise StoreError(f"{path}: no key '{key}'") from None
    if kind == "metrics":
        path, *keys = args
        data = sources.json(path)
        try:
            rows = [[k, format_value(lookup(data, k))] for k in keys]
        except KeyError as err:
            raise StoreError(f"{path}: no key '{err.args[0]}'") from None
        body = table(rows, ["metric", "value"])
    elif kind == "csv":
        path, *columns = args
        body = csv_table(sources.csv(path), columns or None)
    elif kind == "file":
        (path,) = args
        full = sources.root / path
        if not full.is_file():
            raise StoreError(f"{full}: not found")
        body = full.read_text().strip()
    elif kind == "text":
        (name,) = args
        if name not in sources.texts:
            raise ValueError(f"no generated text '{name}'")
        body = sources.texts[name]().strip()
    else:
        raise ValueError(f"unknown generated span kind '{kind}'")
    return f"\n{body}\n" if block else body


def fill(text: str, sources: Sources) -> str:
    """``text`` with every generated span re-rendered from ``sources``."""

    def replace(m: re.Match[str]) -> str:
        block = kind_is_block(m.group("spec"))
        body = render_span(m.group("spec"), sources, block)
        return f"<!-- g: {m.group('spec')} -->{body}<!-- /g -->"

    return SPAN.sub(replace, text)


def kind_is_block(spec: str) -> bool:
    """Tables and texts stand on lines of their own; values sit inside a sentence."""
    return not spec.startswith("value ")
