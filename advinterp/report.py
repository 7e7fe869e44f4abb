"""One offline HTML page gathering every stage's description, metrics, tables and figures.

The page is a single file: figures are embedded as base64 PNG so it can be mailed,
archived next to a DVC commit, or opened from a shared drive without its folder.
"""

from __future__ import annotations

import base64
import html
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from advinterp.errors import StoreError
from advinterp.store import read_json


@dataclass
class StageSection:
    """What the report shows of one stage."""

    name: str
    desc: str = ""
    method: str = "other"
    method_title: str = "Other stages"
    metrics: dict[str, Any] = field(default_factory=dict)
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    figures: list[tuple[str, bytes]] = field(default_factory=list)


def flatten(obj: Any, prefix: str = "", max_list: int | None = None) -> dict[str, Any]:
    """Nested metrics as dotted keys: {"a": {"b": 1}} -> {"a.b": 1}.

    A list longer than ``max_list`` becomes one ``[n values]`` entry.
    """
    if isinstance(obj, dict):
        out: dict[str, Any] = {}
        for k, v in obj.items():
            out.update(flatten(v, f"{prefix}.{k}" if prefix else str(k), max_list))
        return out
    if isinstance(obj, list) and max_list is not None and len(obj) > max_list:
        return {prefix: f"[{len(obj)} values]"}
    return {prefix: obj}


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, list):
        return ", ".join(_fmt(x) for x in v[:12]) + (" ..." if len(v) > 12 else "")
    return html.escape(str(v))


def _section_html(s: StageSection) -> str:
    parts = [f'<section id="{s.name}"><h3><code>{s.name}</code></h3>']
    if s.desc:
        parts.append(f"<p>{html.escape(s.desc)}</p>")
    if s.metrics:
        rows = "".join(
            f"<tr><td>{html.escape(k)}</td><td>{_fmt(v)}</td></tr>"
            for k, v in flatten(s.metrics).items()
        )
        parts.append(f"<table class='metrics'><tr><th>metric</th><th>value</th></tr>{rows}</table>")
    for title, frame in s.tables.items():
        shown = frame.head(40)
        parts.append(f"<h4>{html.escape(title)}</h4>")
        parts.append(shown.to_html(index=False, float_format=lambda x: f"{x:.4g}", border=0))
        if len(frame) > len(shown):
            parts.append(f"<p class='note'>first {len(shown)} of {len(frame)} rows</p>")
    for title, png in s.figures:
        b64 = base64.b64encode(png).decode()
        parts.append(
            f"<figure><img src='data:image/png;base64,{b64}' alt='{html.escape(title)}'>"
            f"<figcaption>{html.escape(title)}</figcaption></figure>"
        )
    parts.append("</section>")
    return "\n".join(parts)


_CSS = """
body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
h2{border-bottom:2px solid #ccc;padding-bottom:.2em;margin-top:2em}
section{margin:1em 0 2em 0}
table{border-collapse:collapse;font-size:.85em;margin:.5em 0}
td,th{border:1px solid #ddd;padding:2px 8px;text-align:left}
th{background:#f3f3f3}
figure{display:inline-block;margin:.5em;vertical-align:top}
img{max-width:100%;border:1px solid #eee}
figcaption{font-size:.8em;color:#555}
.note{font-size:.8em;color:#777}
nav a{margin-right:1em}
"""


def render_report(sections: Sequence[StageSection], title: str = "advinterp report") -> str:
    """The HTML page: sections grouped by method, methods in the order they first appear."""
    groups: dict[str, tuple[str, list[StageSection]]] = {}
    for s in sections:
        groups.setdefault(s.method, (s.method_title, []))[1].append(s)
    nav = " ".join(f"<a href='#{k}'>{html.escape(h)}</a>" for k, (h, _) in groups.items())
    body = "\n".join(
        f"<h2 id='{k}'>{html.escape(h)}</h2>\n" + "\n".join(_section_html(s) for s in members)
        for k, (h, members) in groups.items()
    )
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        f"<style>{_CSS}</style></head><body><h1>{html.escape(title)}</h1><nav>{nav}</nav>{body}"
        "</body></html>"
    )


def _paths(entries: list[Any] | None) -> list[Path]:
    out = []
    for e in entries or []:
        name = next(iter(e)) if isinstance(e, dict) else e
        if "${" not in str(name):
            out.append(Path(name))
    return out


def read_sections(dvc_yaml: Path) -> list[StageSection]:
    """Each dvc.yaml stage's method, description, metrics, CSV tables and PNG figures.

    Stages are read in dvc.yaml order; a stage whose ``meta`` has ``gathers: true``
    (the report itself) is left out. Missing result files are skipped: the page shows
    what has been computed.
    """
    root = dvc_yaml.parent
    if not dvc_yaml.is_file():
        raise StoreError(f"{dvc_yaml}: not found (--dvc-yaml)")
    try:
        spec_all = yaml.safe_load(dvc_yaml.read_text()) or {}
    except yaml.YAMLError as err:
        raise StoreError(f"{dvc_yaml}: not valid YAML: {' '.join(str(err).split())}") from None
    if not isinstance(spec_all, dict):
        raise StoreError(f"{dvc_yaml}: expected a mapping with a 'stages' key")
    sections = []
    for name, spec in spec_all.get("stages", {}).items():
        meta = spec.get("meta") or {}
        if meta.get("gathers"):
            continue
        section = StageSection(
            name=name,
            desc=str(spec.get("desc", "")),
            method=str(meta.get("method", "other")),
            method_title=str(meta.get("method_title", "Other stages")),
        )
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
