"""``dvc plots show`` and ``dvc plots diff`` on the generated dvc.yaml and real stage outputs.

A scratch git + DVC repository holds the repository's dvc.yaml and the curves and
figures the stages wrote in a tiny world (tests/stages/stage_world.py: every stage that
declares a plot or a figure, and what they read, run once on the tiny params). Each
seeded stage's output is placed at every seed's path (``seed_<s>/``), as dvc.yaml
names them. The plots expected in DVC's HTML are read from that dvc.yaml (its
``plots`` definitions and every stage's ``plots`` outputs), never listed here.
"""

from __future__ import annotations

import csv
import json
import shutil
import sys
from functools import reduce
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
import yaml
from dvc_render.base import Renderer

from advinterp.profiles import locate
from flows.generate import declarations, load_profiles, producers, profile_names, upstream
from stages.stage import Stage, collection
from tests.conftest import ROOT, init_repo, run
from tests.stages.stage_world import make_world

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

PLOTTED = ("plot", "figure")
MARK = "0.123456"  # the value the second commit gives one plot's y columns
OLD, NEW = "HEAD~1", "HEAD"


def plotting_stages() -> list[Stage]:
    """The declared stages that write a curve or a figure, and every stage they read
    from (DAG order): the smallest world in which every declared plot exists."""
    stages = declarations()
    by_name = {s.name: s for s in stages}
    made = producers(stages)
    need = {s.name for s in stages if any(o.kind in PLOTTED for o in s.outputs.values())}
    frontier = set(need)
    while frontier:
        frontier = {u for n in frontier for u in upstream(by_name[n], made, profile_names())}
        frontier -= need
        need |= frontier
    return [s for s in stages if s.name in need]


def declared_plots(dvc_yaml: Path) -> tuple[dict[str, dict[str, Any]], list[str]]:
    """(top-level plot id -> its definition, every stage's plot output path with each
    ``foreach`` item filled in) of ``dvc_yaml``."""
    doc = yaml.safe_load(dvc_yaml.read_text())
    top: dict[str, dict[str, Any]] = {}
    for entry in doc.get("plots", []):
        key, props = next(iter(entry.items())) if isinstance(entry, dict) else (entry, None)
        top[key] = props or {}
    params = yaml.safe_load((dvc_yaml.parent / "params.yaml").read_text())
    outputs = []
    for whole in doc["stages"].values():
        spec = whole.get("do", whole)
        items = whole.get("foreach") or [None]
        if isinstance(items, str):  # ${section.key}: one run per value of a params list
            items = reduce(lambda d, k: d[k], items.strip("${}").split("."), params)
        for item in items:
            for entry in spec.get("plots", []):
                path = str(next(iter(entry)) if isinstance(entry, dict) else entry)
                outputs.append(path if item is None else path.replace("${item}", str(item)))
    return top, outputs


class PlotsPage(HTMLParser):
    """The plots of a DVC plots HTML page: each ``<div id>``'s text, ``<p>`` labels (an
    image's path and revisions) and images, and its Vega-Lite spec where it has one."""

    def __init__(self, text: str):
        super().__init__()
        self.divs: dict[str, dict[str, Any]] = {}
        self._current: str | None = None
        self._in_p = False
        self.feed(text)
        for div in self.divs.values():
            _head, sep, tail = div["text"].partition("var spec = ")
            div["spec"] = json.JSONDecoder().raw_decode(tail)[0] if sep else None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "div" and found.get("id"):
            self._current = str(found["id"])
            self.divs[self._current] = {"text": "", "labels": [], "images": []}
        elif tag == "img" and self._current is not None:
            self.divs[self._current]["images"].append(found.get("src"))
        self._in_p = tag == "p"

    def handle_endtag(self, tag: str) -> None:
        if tag == "p":
            self._in_p = False

    def handle_data(self, data: str) -> None:
        if self._current is not None:
            self.divs[self._current]["text"] += data
            if self._in_p:
                self.divs[self._current]["labels"].append(data.strip())


def html_id(name: str) -> str:
    """The ``<div id>`` DVC's renderer gives a plot named ``name``."""
    return Renderer.remove_special_chars(name)


def curve(page: PlotsPage, plot_id: str, props: dict[str, Any]) -> dict[str, Any]:
    """The Vega-Lite spec of the top-level plot ``plot_id``: a div named after it (DVC
    prefixes a path id with its dvc.yaml) whose title is the declared one."""
    candidates = [html_id(f"dvc.yaml::{plot_id}"), html_id(plot_id)]
    for div_id in candidates:
        spec = page.divs.get(div_id, {}).get("spec")
        if spec and spec.get("title", {}).get("text") == props.get("title"):
            return spec
    found = {d: (page.divs[d]["spec"] or {}).get("title") for d in candidates if d in page.divs}
    raise AssertionError(
        f"plot {plot_id!r} titled {props.get('title')!r} is not in the HTML "
        f"(divs {candidates}: {found or 'absent'}; an empty spec is DVC's answer to a "
        "declared x or y column the CSV lacks)"
    )


def assert_curve_data(spec: dict[str, Any], plot_id: str, props: dict[str, Any]) -> None:
    """Every declared y (a column, or one column of each file) has rows with x."""
    rows = spec["data"]["values"]
    assert rows, f"plot {plot_id!r} has no data"
    x = props["x"]
    assert all(x in r for r in rows), f"plot {plot_id!r}: rows without x column {x!r}"
    y = props["y"]
    if isinstance(y, dict):  # one column of several files: rows name their file
        files = {Path(f).name for f in y}
        assert files <= {r.get("filename") for r in rows}, f"plot {plot_id!r}: files {files}"
        assert all(y[f] in r for f in y for r in rows if r.get("filename") == Path(f).name)
    else:
        ys = [y] if isinstance(y, str) else list(y)
        assert set(ys) <= {r.get("field") for r in rows}, f"plot {plot_id!r}: y columns {ys}"


def dvc(repo: Path, *args: str) -> str:
    proc = run([sys.executable, "-m", "dvc", *args], repo)
    out = proc.stdout + proc.stderr
    assert "failed to load" not in out.lower(), out
    return out


@pytest.fixture(scope="module")
def plots_repo(tmp_path_factory) -> Path:
    """A git + DVC repository: dvc.yaml and the tiny world's curves and figures, committed."""
    base = tmp_path_factory.mktemp("dvc_plots")
    repo = base / "repo"
    repo.mkdir()
    default = load_profiles(ROOT)[0]
    with make_world(base / "world", plotting_stages()) as world:
        for stage in world.stages.values():
            seeds = default.config.seeds if default.seeded(stage) else (None,)
            for o in stage.outputs.values():
                if o.kind not in PLOTTED:
                    continue
                for seed in seeds:
                    path = collection(o.path)  # a unit stage's: every run's files
                    src, dst = world.root / path, repo / locate(path, None, seed)
                    dst.parent.mkdir(parents=True, exist_ok=True)
                    (shutil.copytree if src.is_dir() else shutil.copy)(src, dst)
        shutil.copy(world.root / "params.yaml", repo / "params.yaml")
    shutil.copy(ROOT / "dvc.yaml", repo / "dvc.yaml")
    return init_repo(repo, "tiny world's plots")


def test_plots_show_draws_every_declared_plot(plots_repo, tmp_path):
    top, outputs = declared_plots(plots_repo / "dvc.yaml")
    assert top and outputs, "dvc.yaml declares no plots"
    dvc(plots_repo, "plots", "show", "-o", str(tmp_path / "show"))
    page = PlotsPage((tmp_path / "show" / "index.html").read_text())

    for plot_id, props in top.items():
        spec = curve(page, plot_id, props)
        assert_curve_data(spec, plot_id, props)
    for path in outputs:  # a directory output: one plot per file in it
        named = [d for d in page.divs if d == html_id(path) or d.startswith(html_id(path + "/"))]
        assert named, f"stage plot output {path} is not in the HTML"
        if path.endswith(".png"):
            assert len(page.divs[html_id(path)]["images"]) == 1, path


def test_plots_diff_shows_both_revisions_and_the_change(plots_repo, tmp_path):
    top, outputs = declared_plots(plots_repo / "dvc.yaml")
    # the second commit: the first curve of one CSV gets new y values
    changed, props = next((k, p) for k, p in top.items() if not isinstance(p["y"], dict))
    csv_path = plots_repo / changed
    with csv_path.open() as f:
        rows = list(csv.DictReader(f))
    columns = list(rows[0])
    for r in rows:
        r.update(dict.fromkeys(props["y"], MARK))
    with csv_path.open("w", newline="") as f:
        writer = csv.DictWriter(f, columns)
        writer.writeheader()
        writer.writerows(rows)
    run(["git", "commit", "-qam", f"change {changed}"], plots_repo)

    dvc(plots_repo, "plots", "diff", OLD, NEW, "-o", str(tmp_path / "diff"))
    page = PlotsPage((tmp_path / "diff" / "index.html").read_text())

    for plot_id, plot_props in top.items():
        spec = curve(page, plot_id, plot_props)
        revs = {r["rev"] for r in spec["data"]["values"]}
        assert revs == {OLD, NEW}, f"plot {plot_id!r} shows revisions {revs}"
        assert_curve_data(spec, plot_id, plot_props)
    values = curve(page, changed, props)["data"]["values"]
    new = {r["dvc_inferred_y_value"] for r in values if r["rev"] == NEW}
    old = {r["dvc_inferred_y_value"] for r in values if r["rev"] == OLD}
    assert new == {MARK} and MARK not in old, (old, new)
    for path in (p for p in outputs if p.endswith(".png")):
        div = page.divs[html_id(path)]
        assert {OLD, NEW} <= set(div["labels"]), f"{path}: labels {div['labels']}"
        assert len(div["images"]) == 2, f"{path}: {div['images']}"
