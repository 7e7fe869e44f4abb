"""One offline HTML page gathering every stage's description, metrics, tables and figures.

The page is a single file: figures are embedded (re-encoded small by
:mod:`advinterp.report_media`) and CSV curves are drawn as inline SVG, so it can be
mailed, archived next to a DVC commit, or opened from a shared drive without its
folder; it loads nothing from anywhere.

Its order: the findings table; the side-by-side comparison (the ``lead`` methods); a
one-screen overview per method (its key figure and three labelled numbers, declared in
:mod:`advinterp.report_overview`); then the details, method by method and stage by
stage: the curves drawn, the figures, short tables, and the long tables and every raw
metric folded in ``<details>``.
"""

from __future__ import annotations

import html
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from advinterp.analysis.seed_tables import cell_text
from advinterp.config.core import read_params
from advinterp.errors import StoreError
from advinterp.report_media import CurveData, Embedded, Series, compact_image, curve_svg
from advinterp.store import read_json

SHORT_TABLE = (12, 10)  # rows, columns: a longer or wider table is folded away
SEED_KEY = "seed "  # a seeded stage's metrics: {"seed 0": {...}, "seed 1": {...}}


@dataclass
class StageSection:
    """What the report shows of one stage.

    ``tables``: CSVs that are data to read (shown, folded when long); ``curves``: CSV
    curves to draw; ``data``: the CSVs behind the drawn curves (folded); ``figures``:
    (path, PNG bytes) of the figures the stage writes.
    """

    name: str
    desc: str = ""
    method: str = "other"
    method_title: str = "Other stages"
    metrics: dict[str, Any] = field(default_factory=dict)
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    figures: list[tuple[str, bytes]] = field(default_factory=list)
    curves: list[CurveData] = field(default_factory=list)
    data: dict[str, pd.DataFrame] = field(default_factory=dict)
    seeds: list[Any] = field(default_factory=list)  # a seeded stage's seeds; [] = unseeded


@dataclass(frozen=True)
class KeyNumberText:
    """One number of an overview card, formatted: its label, the value, where it comes
    from (file: key), and what the ± means (empty for a single value)."""

    label: str
    text: str
    source: str
    over: str = ""


@dataclass
class OverviewCard:
    """A method's one-screen summary: its key figure (a path among the sections' figures
    or drawn curves) and its numbers."""

    method: str
    title: str
    figure: str | None
    numbers: list[KeyNumberText]
    caption: str = ""


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
    """A value as plain text (escaped when the table is written)."""
    if isinstance(v, float):
        return "" if math.isnan(v) else f"{v:.4g}"
    if isinstance(v, list):
        return ", ".join(_fmt(x) for x in v[:12]) + (" ..." if len(v) > 12 else "")
    return str(v)


# -- the page ---------------------------------------------------------------------------------

_CSS = """
body{font-family:system-ui,sans-serif;max-width:1100px;margin:1.5em auto;padding:0 1em;
  color:#222;line-height:1.35}
h1{margin-bottom:.2em}
h2{border-bottom:2px solid #ccc;padding-bottom:.2em;margin-top:2em}
h3{margin:1.4em 0 .3em 0}
h3 .note{font-weight:normal}
section{margin:.6em 0 1.6em 0}
nav{font-size:.9em;line-height:1.8}
nav a{margin-right:.9em;white-space:nowrap}
.scroll{overflow-x:auto;max-width:100%}
table{border-collapse:collapse;font-size:.85em;margin:.4em 0}
td,th{border:1px solid #ddd;padding:2px 8px;text-align:left;vertical-align:top}
th{background:#f3f3f3}
table.findings td:nth-child(2),table.findings td:last-child{min-width:16em}
.figs{display:flex;flex-wrap:wrap;gap:.8em 1.2em;align-items:flex-start;margin:.5em 0}
figure{margin:0;max-width:100%}
img{max-width:100%;height:auto;border:1px solid #eee}
svg.plot{max-width:100%;height:auto;display:block;font-family:'DejaVu Sans',sans-serif}
svg.plot *{stroke-linejoin:round;stroke-linecap:butt}
figcaption{font-size:.8em;color:#555;max-width:60em}
figure.curve figcaption{max-width:36em}
.note{font-size:.8em;color:#777}
details{margin:.4em 0}
details>summary{cursor:pointer;color:#345;font-size:.9em}
.card{display:grid;grid-template-columns:minmax(0,1fr) 15em;gap:1em;align-items:start;
  border:1px solid #ddd;border-radius:6px;padding:.8em 1em;margin:.6em 0 1.4em 0}
.card h3{grid-column:1/-1;margin:0}
.card .fig img{max-height:480px;width:auto;object-fit:contain}
.nums{display:flex;flex-direction:column;gap:.9em}
.nums.row{flex-direction:row;flex-wrap:wrap;gap:1.5em;margin:.4em 0 .8em 0}
.num b{display:block;font-size:1.5em;font-variant-numeric:tabular-nums}
.num span{display:block;font-size:.9em}
.num small{display:block;font-size:.7em;color:#888;overflow-wrap:anywhere}
.card p{grid-column:1/-1;margin:0;font-size:.9em}
"""

_VERDICT_COLOURS = {
    "reproduced": "#d9f2d9",
    "partly": "#fff3cc",
    "not reproduced": "#f8d7d7",
    "not comparable": "#eeeeee",
}


def _spread_text(sp: dict[str, Any]) -> str:
    return f"{sp['mean']:.3f} ± {sp['sd']:.3f}"


def _scroll(table_html: str) -> str:
    """A table that scrolls inside its own box rather than widening the page."""
    return f"<div class='scroll'>{table_html}</div>"


def _numbers_html(numbers: Iterable[KeyNumberText], row: bool = False) -> str:
    items = "".join(
        f"<div class='num' title='{html.escape(n.source, quote=True)}'><b>{html.escape(n.text)}</b>"
        f"<span>{html.escape(n.label)}</span>"
        + (f"<small>{html.escape(n.over)}</small>" if n.over else "")
        + "</div>"
        for n in numbers
    )
    return f"<div class='nums{' row' if row else ''}'>{items}</div>"


def findings_html(doc: dict[str, Any], card: OverviewCard | None = None) -> str:
    """The findings table (``findings`` stage) as the page's first section, with the
    verdict counts of ``card`` above it."""
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
    ]
    if card is not None:
        parts.append(_numbers_html(card.numbers, row=True))
    parts.append(_scroll(f"<table class='findings'>{head}{''.join(rows)}</table>"))
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
            f"<h4>{html.escape(t['title'])}</h4>"
            + _scroll(f"<table><tr><th></th>{head_t}</tr>{body_t}</table>")
        )
    if settings:
        parts.append(
            "<h4>Setting checks</h4>"
            + _scroll(
                f"<table><tr><th>what</th><th>mean ± sd</th><th>seeds</th></tr>{settings}</table>"
            )
        )
    return "\n".join(parts)


def metrics_frame(metrics: Mapping[str, Any]) -> pd.DataFrame:
    """Every metric as one row of text; a seeded stage's seeds side by side."""
    if metrics and all(str(k).startswith(SEED_KEY) for k in metrics):
        flat = {seed: flatten(m, max_list=12) for seed, m in metrics.items()}
        keys = list(dict.fromkeys(k for f in flat.values() for k in f))
        columns = {s: [_fmt(f.get(k, "")) for k in keys] for s, f in flat.items()}
        return pd.DataFrame({"metric": keys, **columns})
    flat_one = flatten(dict(metrics), max_list=12)
    return pd.DataFrame({"metric": list(flat_one), "value": [_fmt(v) for v in flat_one.values()]})


def _frame_html(frame: pd.DataFrame, limit: int = 200) -> str:
    """``frame`` as a compact table (one ``<tr>`` a line, cells escaped) that scrolls in
    its box; only its first ``limit`` rows."""
    shown = frame.head(limit)
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in shown.columns)
    rows = "\n".join(
        "<tr>" + "".join(f"<td>{html.escape(_fmt(v))}</td>" for v in row) + "</tr>"
        for row in shown.itertuples(index=False)
    )
    note = (
        f"<p class='note'>first {len(shown)} of {len(frame)} rows</p>" if len(frame) > limit else ""
    )
    return _scroll(f"<table><tr>{head}</tr>\n{rows}</table>") + note


def _folded(summary: str, body: str) -> str:
    return f"<details><summary>{html.escape(summary)}</summary>{body}</details>"


def _is_short(frame: pd.DataFrame) -> bool:
    return len(frame) <= SHORT_TABLE[0] and len(frame.columns) <= SHORT_TABLE[1]


class _Page:
    """Renders sections and cards: every drawn curve gets a page-unique id prefix, and a
    figure an overview card shows is embedded there only (its stage points to it)."""

    def __init__(self, sections: Sequence[StageSection], cards: Mapping[str, OverviewCard]):
        self._next = 0
        self.figures = {path: png for s in sections for path, png in s.figures}
        self.curves = {c.source: c for s in sections for c in s.curves}
        # a figure in an overview card is shown there, once, and pointed to from its stage
        self.in_cards = {c.figure: c.method for c in cards.values() if c.figure}

    def _uid(self) -> str:
        self._next += 1
        return f"plot{self._next}"

    def image(self, png: bytes, caption: str) -> str:
        img: Embedded = compact_image(png)
        size = f" width='{img.width}' height='{img.height}'" if img.width else ""
        return (
            f"<figure><img src='{img.uri}'{size} alt='{html.escape(caption, quote=True)}'>"
            f"<figcaption>{html.escape(caption)}</figcaption></figure>"
        )

    def curve(self, c: CurveData) -> str:
        how = "" if c.declared else " (columns chosen by the report: the stage declares no curve)"
        return (
            f"<figure class='curve'>{curve_svg(c, self._uid())}"
            f"<figcaption>{html.escape(c.title)}<br><span class='note'>"
            f"{html.escape(c.source + how)}</span></figcaption></figure>"
        )

    def card(self, card: OverviewCard, heading: bool = True) -> str:
        fig = ""
        if card.figure in self.figures:
            fig = self.image(self.figures[card.figure], card.figure)
        elif card.figure in self.curves:
            fig = self.curve(self.curves[card.figure])
        elif card.figure:
            fig = f"<p class='note'>{html.escape(card.figure)}: not computed yet</p>"
        title = (
            f"<h3><a href='#method-{card.method}'>{html.escape(card.title)}</a></h3>"
            if heading
            else ""
        )
        caption = f"<p>{html.escape(card.caption)}</p>" if card.caption else ""
        return (
            f"<section class='card' id='overview-{card.method}'>{title}"
            f"<div class='fig'>{fig}</div>{_numbers_html(card.numbers)}{caption}</section>"
        )

    def section(self, s: StageSection) -> str:
        seeds = (
            f" <span class='note'>seeds {', '.join(map(str, s.seeds))}; figures and curves "
            f"of seed {s.seeds[0]}</span>"
            if len(s.seeds) > 1
            else ""
        )
        parts = [f"<section id='stage-{s.name}'><h3><code>{html.escape(s.name)}</code>{seeds}</h3>"]
        if s.desc:
            parts.append(f"<p>{html.escape(s.desc)}</p>")
        figs, pointers = [], []
        for c in s.curves:
            if c.source in self.in_cards:
                pointers.append(c.source)
            else:
                figs.append(self.curve(c))
        for path, png in s.figures:
            if path in self.in_cards:
                pointers.append(path)
            else:
                figs.append(self.image(png, path))
        if figs:
            parts.append(f"<div class='figs'>{''.join(figs)}</div>")
        for path in pointers:
            parts.append(
                f"<p class='note'>{html.escape(path)}: shown in the "
                f"<a href='#overview-{self.in_cards[path]}'>overview</a></p>"
            )
        for title, frame in s.tables.items():
            body = _frame_html(frame)
            if _is_short(frame):
                parts.append(f"<h4>{html.escape(title)}</h4>{body}")
            else:
                parts.append(_folded(f"{title} ({len(frame)} rows × {len(frame.columns)})", body))
        if s.data:
            body = "".join(f"<h4>{html.escape(p)}</h4>{_frame_html(f)}" for p, f in s.data.items())
            parts.append(_folded(f"the numbers behind the curves ({len(s.data)} CSV)", body))
        if s.metrics:
            frame = metrics_frame(s.metrics)
            parts.append(_folded(f"all metrics ({len(frame)})", _frame_html(frame, limit=10**6)))
        parts.append("</section>")
        return "\n".join(parts)


def render_report(
    sections: Sequence[StageSection],
    title: str = "advinterp report",
    findings: dict[str, Any] | None = None,
    lead: Sequence[str] = (),
    cards: Mapping[str, OverviewCard] | None = None,
) -> str:
    """The HTML page: the findings first (when given), then the methods named in
    ``lead`` (each with its overview card at its head), then the overview cards of the
    other methods, then every method's stages in the order they first appear.

    Ids: ``findings``, ``overview`` and ``overview-<method>``, ``method-<method>`` and
    ``stage-<stage>``: distinct by construction.
    """
    cards = dict(cards or {})
    groups: dict[str, tuple[str, list[StageSection]]] = {}
    for s in sorted(sections, key=lambda s: s.method not in lead):  # stable: keeps the order
        groups.setdefault(s.method, (s.method_title, []))[1].append(s)
    page = _Page(sections, cards)
    leading = [k for k in groups if k in lead]
    others = [k for k in groups if k not in lead]
    overview = [k for k in others if k in cards and k != "findings"]

    def group(key: str) -> str:
        heading, members = groups[key]
        head = f"<h2 id='method-{key}'>{html.escape(heading)}</h2>"
        card = page.card(cards[key], heading=False) if key in lead and key in cards else ""
        return "\n".join([head, card, *(page.section(s) for s in members)])

    nav = []
    body = []
    if findings is not None:
        nav.append("<a href='#findings'>Findings</a>")
        body.append(findings_html(findings, cards.get("findings")))
    for key in leading:
        nav.append(f"<a href='#method-{key}'>{html.escape(groups[key][0])}</a>")
        body.append(group(key))
    if overview:
        nav.append("<a href='#overview'>Overview</a>")
        body.append(
            "<h2 id='overview'>Overview: each method on one screen</h2>"
            "<p class='note'>Each method's key figure and three numbers (mean ± sd over the "
            "seeds where a stage is seeded; hover a number for the metric it is). "
            "The details follow below.</p>"
        )
        body += [page.card(cards[k]) for k in overview]
    if others:
        nav.append("<b>Details:</b>")
        nav += [f"<a href='#method-{k}'>{html.escape(groups[k][0])}</a>" for k in others]
        body += [group(k) for k in others]
    return (
        f"<!doctype html><html><head><meta charset='utf-8'>"
        f"<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<title>{html.escape(title)}</title><style>{_CSS}</style></head><body>"
        f"<h1>{html.escape(title)}</h1><nav>{' '.join(nav)}</nav>\n"
        + "\n".join(body)
        + "\n</body></html>"
    )


# -- reading dvc.yaml -------------------------------------------------------------------------


@dataclass(frozen=True)
class CurveSpec:
    """One top-level ``plots`` entry of dvc.yaml, relative to the stage output it draws:
    ``y`` = (file inside the output, "" = the output itself; column) per line."""

    title: str
    x: str
    y: tuple[tuple[str, str], ...]


def _entry_paths(entries: list[Any] | None, item: Any = None) -> list[Path | None]:
    """The paths of dvc.yaml output entries, with a foreach ``item`` filled in (None for
    one still templated); positions are kept, so the same output of the same stage has
    the same index in every profile's dvc.yaml."""
    out: list[Path | None] = []
    for e in entries or []:
        name = str(next(iter(e)) if isinstance(e, dict) else e)
        if item is not None:
            name = name.replace("${item}", str(item))
        out.append(None if "${" in name else Path(name))
    return out


def _foreach(whole: Mapping[str, Any], root: Path, params: Path) -> tuple[list[Any], bool]:
    """A dvc.yaml stage's foreach items, and whether they are units rather than seeds.

    A seeded stage lists its seeds; a unit stage (``foreach: ${<section>.<key>}``, one
    run per value of a params list) has its items read off the files its runs wrote
    (its first output whose file name holds ``${item}``): the report shows what was
    computed, as it reads the directories it depends on. Of those, only the values the
    list in ``params`` (the dvc.yaml's params file) still names: DVC leaves a removed
    run's files in place, and they are not results of these params. [None] for a
    single run.
    """
    each = whole.get("foreach")
    if each is None:
        return [None], False
    if not isinstance(each, str):
        return list(each), False
    listed = _listed(each, params)
    spec = whole.get("do", whole)
    for key in ("metrics", "outs", "plots"):
        for name in (str(next(iter(e)) if isinstance(e, dict) else e) for e in spec.get(key) or []):
            head, sep, tail = name.partition("${item}")
            if not sep or "/" in tail:
                continue
            found = [p.relative_to(root).as_posix() for p in root.glob(head + "*" + tail)]
            items = [f[len(head) : len(f) - len(tail)] for f in found]
            items = [i for i in items if listed is None or i in listed]
            return sorted(items, key=_natural), True
    return [], True


def _listed(each: str, params: Path) -> set[str] | None:
    """The items DVC makes of ``${<section>.<key>}`` from ``params`` (each value as DVC
    puts it into a path, ``str``), or None when the file or the key is not there."""
    if not (each.startswith("${") and each.endswith("}")) or not params.is_file():
        return None
    value: Any = read_params(params)
    for part in each[2:-1].split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return {str(v) for v in value} if isinstance(value, list) else None


def _natural(item: str) -> tuple[float, str]:
    try:
        return float(item), item
    except ValueError:
        return float("inf"), item


def _paths(entries: list[Any] | None, item: Any = None) -> list[Path]:
    return [p for p in _entry_paths(entries, item) if p is not None]


def _inside(file: str, output: str) -> str | None:
    if file == output:
        return ""
    return file[len(output) + 1 :] if file.startswith(output + "/") else None


def curve_specs(spec_all: Mapping[str, Any]) -> dict[tuple[str, int], list[CurveSpec]]:
    """dvc.yaml's top-level ``plots`` (the stages' ``Curve`` declarations) keyed by the
    (stage, index in its ``plots`` list) of the output each draws."""
    outputs = []
    for name, whole in (spec_all.get("stages") or {}).items():
        each = whole.get("foreach")
        items = each if isinstance(each, list) else [None]  # a unit stage draws no curves
        spec = whole.get("do", whole)
        for i, p in enumerate(_entry_paths(spec.get("plots"), items[0])):
            if p is not None:
                outputs.append((name, i, p.as_posix()))
    found: dict[tuple[str, int], list[CurveSpec]] = {}
    for entry in spec_all.get("plots") or []:
        if not isinstance(entry, dict) or len(entry) != 1:
            continue
        key, d = next(iter(entry.items()))
        if not isinstance(d, dict) or "x" not in d or "y" not in d:
            continue
        y = d["y"]
        pairs = (
            [(str(f), str(col)) for f, col in y.items()]
            if isinstance(y, dict)
            else [(str(key), str(col)) for col in ([y] if isinstance(y, str) else y)]
        )
        for name, i, out in outputs:
            rels = [_inside(f, out) for f, _ in pairs]
            if pairs and all(r is not None for r in rels):
                spec_y = tuple((str(r), col) for r, (_, col) in zip(rels, pairs, strict=True))
                found.setdefault((name, i), []).append(
                    CurveSpec(str(d.get("title", key)), str(d["x"]), spec_y)
                )
                break
    return found


def _read_curve(root: Path, output: Path, spec: CurveSpec) -> tuple[CurveData, dict[str, Any]]:
    """The curve ``spec`` of ``output`` (a CSV or a directory of them), and the CSVs read."""
    curve = CurveData(spec.title, spec.x, source=output.as_posix())
    files = {rel for rel, _ in spec.y}
    read: dict[str, pd.DataFrame] = {}
    for rel, col in spec.y:
        path = root / output / rel if rel else root / output
        key = (output / rel).as_posix() if rel else output.as_posix()
        if key not in read:
            if not path.is_file():
                continue
            read[key] = pd.read_csv(path)
        frame = read[key]
        if spec.x not in frame or col not in frame:
            continue
        label = col if len(files) == 1 else Path(rel).stem
        curve.series.append(Series(label, frame[spec.x].tolist(), frame[col].tolist()))
    return curve, read


def history_curve(frame: pd.DataFrame, source: str) -> CurveData | None:
    """A training history no curve is declared for (a CSV with an ``epoch`` column): its
    accuracy columns against epoch, else its loss columns; one line per model where a
    text column (``model``) tells them apart."""
    if "epoch" not in frame:
        return None
    groups = [c for c in frame.columns if not pd.api.types.is_numeric_dtype(frame[c])]
    numeric = [
        c
        for c in frame.columns
        if c != "epoch" and c not in groups and pd.api.types.is_numeric_dtype(frame[c])
    ]
    ys = [c for c in numeric if "acc" in c] or [c for c in numeric if "loss" in c]
    if not ys:
        return None
    what = "accuracy" if "acc" in ys[0] else "loss"
    curve = CurveData(f"Training history: {what}", "epoch", source=source, declared=False)
    parts = list(frame.groupby(groups, sort=False)) if groups else [("", frame)]
    for g, part in parts:
        tag = " ".join(map(str, g)) if isinstance(g, tuple) else str(g)
        for col in ys:
            label = f"{tag} {col}".strip()
            curve.series.append(Series(label, part["epoch"].tolist(), part[col].tolist()))
    return curve


def read_profile_sections(dvc_yaml: Path) -> list[StageSection]:
    """:func:`read_sections` of ``dvc_yaml`` and of every profile's file beside it
    (``profiles/<name>/dvc.yaml``, paths relative to the repository root); a profile's
    stages are named ``<profile>/<stage>`` and join their method's group. A profile's
    file declares no curves: the stages' curves in ``dvc_yaml`` are drawn from its CSVs."""
    sections = read_sections(dvc_yaml)
    curves = curve_specs(_load(dvc_yaml))
    for other in sorted(dvc_yaml.parent.glob("profiles/*/dvc.yaml")):
        for section in read_sections(other, root=dvc_yaml.parent, curves=curves):
            section.name = f"{other.parent.name}/{section.name}"
            sections.append(section)
    return sections


def _load(dvc_yaml: Path) -> dict[str, Any]:
    if not dvc_yaml.is_file():
        raise StoreError(f"{dvc_yaml}: not found (--dvc-yaml)")
    try:
        spec_all = yaml.safe_load(dvc_yaml.read_text()) or {}
    except yaml.YAMLError as err:
        raise StoreError(f"{dvc_yaml}: not valid YAML: {' '.join(str(err).split())}") from None
    if not isinstance(spec_all, dict):
        raise StoreError(f"{dvc_yaml}: expected a mapping with a 'stages' key")
    return spec_all


def read_sections(
    dvc_yaml: Path,
    root: Path | None = None,
    curves: Mapping[tuple[str, int], list[CurveSpec]] | None = None,
) -> list[StageSection]:
    """Each dvc.yaml stage's method, description, metrics, curves, tables and figures.

    Stages are read in dvc.yaml order; a stage whose ``meta`` has ``gathers: true``
    (the report itself) is left out. A CSV output is drawn as the curves declared for it
    (``curves``, default: this file's top-level ``plots``), a training history with no
    declared curve by :func:`history_curve`, and any other CSV shown as a table. Missing
    result files are skipped: the page shows what has been computed.
    """
    root = dvc_yaml.parent if root is None else root
    spec_all = _load(dvc_yaml)
    declared = curve_specs(spec_all) if curves is None else curves
    sections = []
    for name, whole in spec_all.get("stages", {}).items():
        # A seeded stage (DVC foreach over seeds): every seed's metrics, the first's
        # figures. A unit stage (one run per value of a params list): every run's metrics
        # merged (each names its own model) and every run's curves.
        items, units = _foreach(whole, root, dvc_yaml.parent / "params.yaml")
        spec = whole.get("do", whole)
        meta = spec.get("meta") or {}
        if meta.get("gathers"):
            continue
        section = StageSection(
            name=name,
            desc=str(spec.get("desc", "")),
            method=str(meta.get("method", "other")),
            method_title=str(meta.get("method_title", "Other stages")),
            seeds=[] if units else [i for i in items if i is not None],
        )
        for item in items:
            for path in _paths(spec.get("metrics"), item):
                if (root / path).is_file():
                    data = read_json(root / path)
                    data = data if isinstance(data, dict) else {str(path): data}
                    seeded = item is not None and not units
                    section.metrics.update({f"{SEED_KEY}{item}": data} if seeded else data)
        shown = items if units else items[:1]
        plots = [p for item in shown for p in _entry_paths(spec.get("plots"), item)]
        for i, plot_path in enumerate(plots):
            if plot_path is None:
                continue
            full = root / plot_path
            for cs in [] if units else declared.get((name, i), []):
                curve, read = _read_curve(root, plot_path, cs)
                if curve.series:
                    section.curves.append(curve)
                    if full.is_file():
                        section.data.update(read)
            if full.is_file() and full.suffix == ".csv" and (name, i) not in declared:
                frame = pd.read_csv(full)
                drawn = history_curve(frame, plot_path.as_posix())
                if drawn is not None:
                    section.curves.append(drawn)
                    section.data[plot_path.as_posix()] = frame
                else:
                    section.tables[plot_path.as_posix()] = frame
        for path in [p for p in plots if p is not None] + [
            p for item in shown for p in _paths(spec.get("outs"), item) if p.suffix == ".png"
        ]:
            full = root / path
            if full.is_file() and full.suffix == ".png":
                section.figures.append((path.as_posix(), full.read_bytes()))
            elif full.is_dir():
                section.figures += [
                    (f.relative_to(root).as_posix(), f.read_bytes())
                    for f in sorted(full.glob("*.png"))
                ]
        sections.append(section)
    return sections
