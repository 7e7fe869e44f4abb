"""What the report page embeds: each figure re-encoded small, each CSV curve drawn as SVG.

The page is one offline file, so its figures are its weight. :func:`compact_image`
caps a figure at the width the page shows (``MAX_WIDTH`` CSS px) and keeps whichever
encoding is smallest: lossless PNG or WebP, or high-quality lossy WebP where it is much
smaller (photo-like grids of images; line plots stay lossless, so their text stays
sharp). The stages' own PNGs are never touched.

:func:`curve_svg` draws a :class:`CurveData` (a ``dvc plots`` curve: an x column and
some y columns of CSV files) as compact inline SVG: text stays text, ids are made unique
to the page, numbers are rounded to 0.1 pt, and the output is byte-for-byte repeatable.
"""

from __future__ import annotations

import base64
import io
import re
from dataclasses import dataclass, field
from typing import Any

import matplotlib

matplotlib.use("Agg")  # headless: the report stage runs on servers and in CI
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.ticker import MaxNLocator
from PIL import Image, UnidentifiedImageError

MAX_WIDTH = 1000  # px: the page's column is about 1070 CSS px wide
LOSSY_QUALITY = 80  # WebP quality for photo-like figures (text in them stays legible)
LOSSY_GAIN = 0.8  # lossy only where it is below this fraction of the best lossless size


@dataclass(frozen=True)
class Embedded:
    """One figure as the page embeds it."""

    mime: str
    data: bytes
    width: int = 0  # px; 0 where the bytes could not be decoded (embedded as they came)
    height: int = 0

    @property
    def uri(self) -> str:
        return f"data:{self.mime};base64,{base64.b64encode(self.data).decode()}"


def _encode(img: Image.Image, **kwargs: Any) -> bytes:
    buf = io.BytesIO()
    img.save(buf, **kwargs)
    return buf.getvalue()


def compact_image(raw: bytes, max_width: int = MAX_WIDTH) -> Embedded:
    """``raw`` (PNG, JPEG, ...) at most ``max_width`` px wide, in its smallest good encoding.

    Transparency is flattened onto white (the page is white). Bytes PIL cannot decode
    are returned unchanged as PNG: the browser test then reports them as broken.
    """
    try:
        with Image.open(io.BytesIO(raw)) as opened:
            opened.load()
            fmt = opened.format
            img = opened.convert("RGBA") if opened.mode not in ("RGB", "L") else opened.copy()
    except (UnidentifiedImageError, OSError, ValueError):
        return Embedded("image/png", raw)
    if img.mode == "RGBA":
        img = Image.alpha_composite(Image.new("RGBA", img.size, "white"), img).convert("RGB")
    resized = img.width > max_width
    if resized:
        img = img.resize(
            (max_width, round(img.height * max_width / img.width)), Image.Resampling.LANCZOS
        )
    # WebP's quality/method trade time for size (method 6 is ten times slower for ~1 %)
    lossless = [("image/webp", _encode(img, format="WEBP", lossless=True, quality=80, method=4))]
    if fmt == "PNG" and not resized:
        lossless.append(("image/png", raw))
    else:
        lossless.append(("image/png", _encode(img, format="PNG", optimize=True)))
    mime, data = min(lossless, key=lambda c: len(c[1]))
    lossy = _encode(img, format="WEBP", quality=LOSSY_QUALITY, method=5)
    if len(lossy) < LOSSY_GAIN * len(data):
        mime, data = "image/webp", lossy
    return Embedded(mime, data, img.width, img.height)


# -- curves -------------------------------------------------------------------------------


@dataclass
class Series:
    """One line of a curve: its label and its points."""

    label: str
    x: list[Any]
    y: list[float]


@dataclass
class CurveData:
    """A ``dvc plots`` curve, read: what :func:`curve_svg` draws.

    ``source``: the CSV path (or directory) it comes from, shown in the caption;
    ``declared``: False where the stage declares no curve and the report chose the
    columns itself (a training history).
    """

    title: str
    x: str
    series: list[Series] = field(default_factory=list)
    source: str = ""
    declared: bool = True


_RC: dict[str, Any] = {
    "svg.fonttype": "none",  # text stays <text>: small, sharp, searchable
    "svg.hashsalt": "advinterp-report",  # repeatable ids, so a rerun writes the same page
    "font.family": "sans-serif",
    "font.sans-serif": ["DejaVu Sans"],  # written as _FONT
    "font.size": 8,
    "axes.titlesize": 8.5,
    "legend.fontsize": 7,
    "axes.spines.top": False,
    "axes.spines.right": False,
}


def _log_x(xs: list[Any]) -> bool:
    """A positive, roughly geometric x (eps 0.0025 ... 0.12) reads better on a log axis;
    evenly spaced x (epochs, iterations, bins) does not."""
    try:
        vals = np.unique(np.asarray(xs, dtype=float))
    except (TypeError, ValueError):
        return False
    if len(vals) < 3 or vals[0] <= 0 or vals[-1] / vals[0] < 20:
        return False
    steps = np.diff(vals)
    return bool(steps.std() > 0.5 * steps.mean())


def _draw(curve: CurveData) -> bytes:
    many = len(curve.series) > 10
    fig, ax = plt.subplots(figsize=(5.4, 3.0 if many else 2.7))
    try:
        tab20 = plt.get_cmap("tab20")
        colours = [tab20(i / 19) for i in range(20)] if many else None
        xs_all: list[Any] = []
        for i, s in enumerate(curve.series):
            few = len(s.x) <= 12
            ax.plot(
                s.x,
                s.y,
                label=s.label,
                lw=1.3,
                marker="o" if few else None,
                ms=2.5,
                color=colours[i % len(colours)] if colours else None,
            )
            xs_all += list(s.x)
        if _log_x(xs_all):
            ax.set_xscale("log")
            ticks = sorted(set(map(float, xs_all)))
            if len(ticks) <= 10:  # the measured x values themselves (eps 0.0025 ... 0.12)
                ax.set_xticks(ticks, [f"{t:g}" for t in ticks])
                ax.minorticks_off()
        elif all(isinstance(x, int | np.integer) for x in xs_all):  # epochs, iterations
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel(curve.x)  # the title is the page's caption, in full
        ax.grid(alpha=0.3, lw=0.6)
        if len(curve.series) > 1:
            if many:
                ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), ncol=1, frameon=False)
            else:
                ax.legend(frameon=False)
        fig.tight_layout(pad=0.4)
        buf = io.BytesIO()
        fig.savefig(buf, format="svg", metadata={"Date": None, "Creator": None})
        return buf.getvalue()
    finally:
        plt.close(fig)


_NUMBER = re.compile(r"(-?\d+\.\d)\d+")
_GEOMETRY = re.compile(r'\b(d|x|y|transform|width|height|viewBox)="([^"]*)"')
_REFS = re.compile(r'(?:url\(#|xlink:href="#)([^)"]+)')
_ID = re.compile(r'\sid="([^"]+)"')


_FONT = "'DejaVu Sans', sans-serif"  # what matplotlib writes for _RC's font
_GROUP = re.compile(r"<g>\n?|<g\s[^>]*>|</g>\n?")


def _bare_groups_dropped(svg: str) -> str:
    """Every ``<g>`` without attributes (matplotlib nests them deep, for its ids) and its
    ``</g>`` removed; groups with attributes (a clip path, a transform) kept."""
    out: list[str] = []
    kept: list[bool] = []
    last = 0
    for m in _GROUP.finditer(svg):
        out.append(svg[last : m.start()])
        last = m.end()
        tag = m[0]
        if tag.startswith("</g>"):
            if kept.pop():
                out.append(tag)
        else:
            bare = tag.startswith("<g>")
            kept.append(not bare)
            if not bare:
                out.append(tag)
    out.append(svg[last:])
    return "".join(out)


def _first_decimal(m: re.Match[str]) -> str:
    return m[1]


def _rounded(m: re.Match[str]) -> str:
    """A geometry attribute with its numbers to one decimal; a path's commands packed."""
    value = _NUMBER.sub(_first_decimal, m[2])
    if m[1] == "d":
        value = re.sub(r"\s*([A-Za-z])\s*", r"\1", value)
        value = re.sub(r"\s+", " ", value)
    return f'{m[1]}="{value}"'


def _tidy_svg(svg: str, uid: str) -> str:
    """Matplotlib's SVG made fit to sit inline in a page beside others: no XML prolog or
    metadata, no page-wide ``*`` style, ids unique to ``uid`` (the unreferenced ones
    dropped), coordinates rounded to 0.1 (text content is left as it is)."""
    svg = svg[svg.index("<svg") :]
    svg = re.sub(r"<metadata>.*?</metadata>\s*", "", svg, flags=re.S)
    svg = re.sub(r'<style type="text/css">[^<]*</style>\s*', "", svg)
    svg = re.sub(r"<defs>\s*</defs>\s*", "", svg)
    svg = _GEOMETRY.sub(_rounded, svg)
    svg = re.sub(r' transform="rotate\(-?0 [^"]*\)"', "", svg)  # rotation by 0: none
    svg = svg.replace(f"font-family: {_FONT}; ", "")  # the page's CSS sets it once
    svg = re.sub(r"\n\s*", "\n", svg)
    referenced = set(_REFS.findall(svg))

    def _id(m: re.Match[str]) -> str:
        return f' id="{uid}-{m[1]}"' if m[1] in referenced else ""

    svg = _ID.sub(_id, svg)
    svg = svg.replace("url(#", f"url(#{uid}-").replace('xlink:href="#', f'xlink:href="#{uid}-')
    svg = _bare_groups_dropped(svg)
    return svg.replace("<svg ", '<svg class="plot" role="img" ', 1).strip()


def curve_svg(curve: CurveData, uid: str) -> str:
    """``curve`` drawn as inline SVG whose ids all start with ``uid``."""
    with plt.rc_context(_RC):  # type: ignore[arg-type]
        raw = _draw(curve)
    return _tidy_svg(raw.decode(), uid)
