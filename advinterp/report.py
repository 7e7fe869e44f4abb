"""One offline HTML page gathering every stage's description, metrics, tables and figures.

The page is a single file: figures are embedded as base64 PNG so it can be mailed,
archived next to a DVC commit, or opened from a shared drive without its folder.
"""

from __future__ import annotations

import base64
import html
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

# Groups of stages, in the order the report shows them, with the method they belong to.
METHODS: list[tuple[str, str, list[str]]] = [
    ("foundation", "Data and classifier", ["dataset", "train", "features"]),
    (
        "attributes",
        "Attributes (Gulshad et al.)",
        [
            "attack",
            "adv_train",
            "sje",
            "accuracy",
            "train_detector",
            "detect",
            "ground",
            "distances",
        ],
    ),
    (
        "localized",
        "Localized attacks as ground truth for explainers (Göpfert et al.)",
        ["localized_attack", "explain", "explain_eval"],
    ),
    (
        "lan",
        "Attention-mask detection (Nguyen et al.)",
        ["lan_train", "mask_classifier", "lan_attacks", "lan_detect"],
    ),
    ("a2e", "Attack to explain (Jalwana et al.)", ["a2e_explain", "a2e_robust"]),
    (
        "igan",
        "InterpretGAN (Zheng et al.)",
        ["igan_train", "igan_explain", "igan_vulnerability", "pooling_study"],
    ),
]


@dataclass
class StageSection:
    """What the report shows of one stage."""

    name: str
    desc: str = ""
    metrics: dict[str, Any] = field(default_factory=dict)
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    figures: list[tuple[str, bytes]] = field(default_factory=list)


def _flatten(obj: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(obj, dict):
        out: dict[str, Any] = {}
        for k, v in obj.items():
            out.update(_flatten(v, f"{prefix}.{k}" if prefix else str(k)))
        return out
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
            for k, v in _flatten(s.metrics).items()
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
    """The HTML page: sections grouped by method in :data:`METHODS` order, others last."""
    by_name = {s.name: s for s in sections}
    groups: list[tuple[str, str, list[StageSection]]] = []
    placed: set[str] = set()
    for key, heading, names in METHODS:
        members = [by_name[n] for n in names if n in by_name]
        if members:
            groups.append((key, heading, members))
            placed.update(s.name for s in members)
    rest = [s for s in sections if s.name not in placed]
    if rest:
        groups.append(("other", "Other stages", rest))
    nav = " ".join(f"<a href='#{k}'>{html.escape(h)}</a>" for k, h, _ in groups)
    body = "\n".join(
        f"<h2 id='{k}'>{html.escape(h)}</h2>\n" + "\n".join(_section_html(s) for s in members)
        for k, h, members in groups
    )
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        f"<style>{_CSS}</style></head><body><h1>{html.escape(title)}</h1><nav>{nav}</nav>{body}"
        "</body></html>"
    )
