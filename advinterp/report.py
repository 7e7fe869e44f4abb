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

from advinterp.analysis.seed_tables import cell_text
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


_VERDICT_COLOURS = {
    "reproduced": "#d9f2d9",
    "partly": "#fff3cc",
    "not reproduced": "#f8d7d7",
    "not comparable": "#eeeeee",
}


def _spread_text(sp: dict[str, Any]) -> str:
    return f"{sp['mean']:.3f} ± {sp['sd']:.3f}"


def findings_html(doc: dict[str, Any]) -> str:
    """The findings table (``findings`` stage) as the page's first section."""
    head = (
        "<tr><th>paper</th><th>claim</th><th>paper's number</th><th>ours (mean ± sd)</th>"
        "<th>seeds</th><th>profile</th><th>verdict</th><th>why</th></tr>"
    )
    rows = []
    for r in doc.get("findings", []):
        colour = _VERDICT_COLOURS.get(r["verdict"], "#fff")
        cells = [
            html.escape(r["paper"]),
            html.escape(r["claim"]),
            html.escape(r["paper_number"]),
            _spread_text(r["ours"]),
            str(r["seeds"]),
            html.escape(r["profile"]),
            f"<b>{html.escape(r['verdict'])}</b>",
            html.escape(f"{r['measures']}: {r['reason']}"),
        ]
        rows.append(
            f"<tr style='background:{colour}'>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>"
        )
    settings = "".join(
        f"<tr><td>{html.escape(x['what'])}</td><td>{_spread_text(x)}</td><td>{x['n']}</td></tr>"
        for x in doc.get("settings", [])
    )
    parts = [
        "<h2 id='findings'>Findings</h2>",
        "<p>Each paper's headline claims beside the paper's number; ours is the mean ± sd "
        "over seeds. <i>Reproduced</i> only where the claimed difference exceeds 2 sd here.</p>",
        f"<table class='findings'>{head}{''.join(rows)}</table>",
    ]
    for t in doc.get("tables", []):
        head_t = "".join(f"<th>{html.escape(c)}</th>" for c in t["columns"])
        body_t = "".join(
            f"<tr><td>{html.escape(r['label'])}</td>"
            + "".join(
                f"<td>{cell_text(c['ours'], t['seeds'])}"
                + (f" <span class='note'>({html.escape(c['paper'])})</span>" if c["paper"] else "")
                + "</td>"
                for c in r["cells"]
            )
            + "</tr>"
            for r in t["rows"]
        )
        parts.append(
            f"<h4>{html.escape(t['title'])}</h4><table><tr><th></th>{head_t}</tr>{body_t}</table>"
        )
    if settings:
        parts.append(
            "<h4>Setting checks</h4><table><tr><th>what</th><th>mean ± sd</th><th>seeds</th>"
            f"</tr>{settings}</table>"
        )
    return "\n".join(parts)


def render_report(
    sections: Sequence[StageSection],
    title: str = "advinterp report",
    findings: dict[str, Any] | None = None,
) -> str:
    """The HTML page: the findings first (when given), then sections grouped by method,
    methods in the order they first appear."""
    groups: dict[str, tuple[str, list[StageSection]]] = {}
    for s in sections:
        groups.setdefault(s.method, (s.method_title, []))[1].append(s)
    nav = " ".join(f"<a href='#{k}'>{html.escape(h)}</a>" for k, (h, _) in groups.items())
    if findings is not None:
        nav = "<a href='#findings'>Findings</a> " + nav
    body = (findings_html(findings) + "\n" if findings is not None else "") + "\n".join(
        f"<h2 id='{k}'>{html.escape(h)}</h2>\n" + "\n".join(_section_html(s) for s in members)
        for k, (h, members) in groups.items()
    )
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        f"<style>{_CSS}</style></head><body><h1>{html.escape(title)}</h1><nav>{nav}</nav>{body}"
        "</body></html>"
    )


def _paths(entries: list[Any] | None, item: Any = None) -> list[Path]:
    """The paths of dvc.yaml output entries, with a foreach ``item`` filled in."""
    out = []
    for e in entries or []:
        name = str(next(iter(e)) if isinstance(e, dict) else e)
        if item is not None:
            name = name.replace("${item}", str(item))
        if "${" not in name:
            out.append(Path(name))
    return out


def read_profile_sections(dvc_yaml: Path) -> list[StageSection]:
    """:func:`read_sections` of ``dvc_yaml`` and of every profile's file beside it
    (``profiles/<name>/dvc.yaml``, paths relative to the repository root); a profile's
    stages are named ``<profile>/<stage>`` and join their method's group."""
    sections = read_sections(dvc_yaml)
    for other in sorted(dvc_yaml.parent.glob("profiles/*/dvc.yaml")):
        for section in read_sections(other, root=dvc_yaml.parent):
            section.name = f"{other.parent.name}/{section.name}"
            sections.append(section)
    return sections


def read_sections(dvc_yaml: Path, root: Path | None = None) -> list[StageSection]:
    """Each dvc.yaml stage's method, description, metrics, CSV tables and PNG figures.

    Stages are read in dvc.yaml order; a stage whose ``meta`` has ``gathers: true``
    (the report itself) is left out. Missing result files are skipped: the page shows
    what has been computed.
    """
    root = dvc_yaml.parent if root is None else root
    if not dvc_yaml.is_file():
        raise StoreError(f"{dvc_yaml}: not found (--dvc-yaml)")
    try:
        spec_all = yaml.safe_load(dvc_yaml.read_text()) or {}
    except yaml.YAMLError as err:
        raise StoreError(f"{dvc_yaml}: not valid YAML: {' '.join(str(err).split())}") from None
    if not isinstance(spec_all, dict):
        raise StoreError(f"{dvc_yaml}: expected a mapping with a 'stages' key")
    sections = []
    for name, whole in spec_all.get("stages", {}).items():
        # A seeded stage (DVC foreach over seeds): every seed's metrics, the first's figures.
        items = whole.get("foreach") or [None]
        spec = whole.get("do", whole)
        meta = spec.get("meta") or {}
        if meta.get("gathers"):
            continue
        section = StageSection(
            name=name,
            desc=str(spec.get("desc", "")),
            method=str(meta.get("method", "other")),
            method_title=str(meta.get("method_title", "Other stages")),
        )
        for item in items:
            for path in _paths(spec.get("metrics"), item):
                if (root / path).is_file():
                    data = read_json(root / path)
                    data = data if isinstance(data, dict) else {str(path): data}
                    section.metrics.update(data if item is None else {f"seed {item}": data})
        for path in _paths(spec.get("plots"), items[0]) + [
            p for p in _paths(spec.get("outs"), items[0]) if p.suffix == ".png"
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
