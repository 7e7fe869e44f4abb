"""advinterp.report: sections read from a dvc.yaml, grouped by the method in its meta;
advinterp.report_media: figures made small, curves drawn; advinterp.report_overview:
each method's key figure and three numbers, checked against the committed metrics."""

from __future__ import annotations

import io
import json
import re

import pandas as pd
import pytest
import yaml
from PIL import Image

from advinterp.errors import StoreError
from advinterp.report import (
    OverviewCard,
    StageSection,
    curve_specs,
    history_curve,
    metrics_frame,
    read_profile_sections,
    read_sections,
    render_report,
)
from advinterp.report_media import CurveData, Series, compact_image, curve_svg
from advinterp.report_overview import (
    OVERVIEWS,
    KeyNumber,
    Overview,
    declared_paths,
    first_seed,
    lookup,
    number_text,
    overview_cards,
    problems,
    seed_paths,
)
from advinterp.store import write_json
from tests.conftest import ROOT


def _png(size=(40, 20), colour=(200, 30, 30, 255), mode="RGBA") -> bytes:
    buf = io.BytesIO()
    Image.new(mode, size, colour[: len(mode)]).save(buf, format="PNG")
    return buf.getvalue()


PNG = _png()


def _ids(page: str) -> list[str]:
    return re.findall(r"\sid=['\"]([^'\"]+)['\"]", page)


def _repo(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "metrics.json").write_text(json.dumps({"acc": 0.5, "nested": {"k": 2}}))
    (tmp_path / "a" / "curve.csv").write_text("x,y\n0,1\n1,3\n")
    (tmp_path / "a" / "figs").mkdir()
    (tmp_path / "a" / "figs" / "f.png").write_bytes(PNG)
    spec = {
        "stages": {
            "one": {
                "desc": "first",
                "meta": {"method": "m1", "method_title": "Method one (A et al.)"},
                "metrics": [{"a/metrics.json": {"cache": False}}],
                "plots": [{"a/curve.csv": {"cache": False}}, {"a/figs": {"cache": False}}],
            },
            "two": {
                "desc": "second",
                "meta": {"method": "m2", "method_title": "Two"},
                "metrics": [{"a/missing.json": {"cache": False}}],
            },
            "three": {"desc": "third", "meta": {"method": "m1", "method_title": "Method one"}},
            "report": {"desc": "all", "meta": {"method": "report", "gathers": True}},
        }
    }
    (tmp_path / "dvc.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    return tmp_path / "dvc.yaml"


def _curved_repo(tmp_path):
    """A seeded stage with declared curves (one CSV, one directory of CSVs), an
    undeclared training history, and a profile whose dvc.yaml declares no curves."""
    for seed in (0, 1):
        d = tmp_path / "artifacts" / "s" / f"seed_{seed}"
        (d / "roc").mkdir(parents=True)
        (d / "curve.csv").write_text("eps,acc,other\n0.01,0.9,1\n0.02,0.5,2\n0.04,0.1,3\n")
        (d / "roc" / "a.csv").write_text("fpr,tpr\n0,0\n0.5,0.8\n1,1\n")
        (d / "roc" / "b.csv").write_text("fpr,tpr\n0,0\n0.5,0.6\n1,1\n")
        (d / "history.csv").write_text(
            "model,epoch,loss,val_accuracy,lr\nm1,1,2.0,0.3,0.1\nm1,2,1.0,0.6,0.1\n"
            "m2,1,2.5,0.2,0.1\nm2,2,1.5,0.5,0.1\n"
        )
        (d / "metrics.json").write_text(json.dumps({"acc": 0.5 + seed / 10}))
    prof = tmp_path / "artifacts" / "p" / "s" / "seed_0"
    prof.mkdir(parents=True)
    (prof / "curve.csv").write_text("eps,acc\n0.01,0.7\n0.02,0.6\n")
    plots = [
        {"artifacts/s/seed_${item}/curve.csv": {"cache": False}},
        {"artifacts/s/seed_${item}/roc": {"cache": False}},
        {"artifacts/s/seed_${item}/history.csv": {"cache": False}},
    ]
    stage = {
        "foreach": [0, 1],
        "do": {
            "desc": "seeded",
            "meta": {"method": "m", "method_title": "M"},
            "metrics": [{"artifacts/s/seed_${item}/metrics.json": {"cache": False}}],
            "plots": plots,
        },
    }
    spec = {
        "plots": [
            {"artifacts/s/seed_0/curve.csv": {"x": "eps", "y": ["acc"], "title": "Accuracy"}},
            {
                "s_roc": {
                    "x": "fpr",
                    "y": {
                        "artifacts/s/seed_0/roc/a.csv": "tpr",
                        "artifacts/s/seed_0/roc/b.csv": "tpr",
                    },
                    "title": "ROC",
                }
            },
        ],
        "stages": {"s": stage},
    }
    (tmp_path / "dvc.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    (tmp_path / "profiles" / "p").mkdir(parents=True)
    prof_stage = {
        "desc": "seeded",
        "meta": {"method": "m", "method_title": "M"},
        "plots": [{"artifacts/p/s/seed_${item}/curve.csv": {"cache": False}}, *plots[1:]],
    }
    (tmp_path / "profiles" / "p" / "dvc.yaml").write_text(
        yaml.safe_dump({"stages": {"s": {"foreach": [0], "do": prof_stage}}})
    )
    return tmp_path / "dvc.yaml"


# -- reading --------------------------------------------------------------------------------


def test_read_sections_takes_metrics_tables_figures_and_skips_the_gathering_stage(tmp_path):
    sections = read_sections(_repo(tmp_path))
    assert [s.name for s in sections] == ["one", "two", "three"]
    one = sections[0]
    assert one.method == "m1" and one.method_title == "Method one (A et al.)"
    assert one.metrics == {"acc": 0.5, "nested": {"k": 2}}
    # no curve declared and no training history: a CSV is a table
    assert one.tables["a/curve.csv"]["y"].tolist() == [1, 3]
    assert one.figures == [("a/figs/f.png", PNG)]
    assert sections[1].metrics == {}  # a result not computed yet is skipped, not an error


def test_declared_curves_are_read_from_their_csvs_and_seeds_metrics_kept_apart(tmp_path):
    (s,) = read_sections(_curved_repo(tmp_path))
    assert s.seeds == [0, 1]
    assert set(s.metrics) == {"seed 0", "seed 1"}
    by_title = {c.title: c for c in s.curves}
    assert set(by_title) == {"Accuracy", "ROC", "Training history: accuracy"}
    acc = by_title["Accuracy"]
    assert acc.source == "artifacts/s/seed_0/curve.csv" and acc.declared
    assert [(x.label, x.x, x.y) for x in acc.series] == [
        ("acc", [0.01, 0.02, 0.04], [0.9, 0.5, 0.1])
    ]
    roc = by_title["ROC"]
    assert [x.label for x in roc.series] == ["a", "b"] and roc.series[1].y == [0, 0.6, 1]
    hist = by_title["Training history: accuracy"]  # undeclared: accuracy per model against epoch
    assert not hist.declared
    assert [x.label for x in hist.series] == ["m1 val_accuracy", "m2 val_accuracy"]
    # the CSVs behind the drawn curves are kept for the page (folded); nothing is a table
    assert set(s.data) == {"artifacts/s/seed_0/curve.csv", "artifacts/s/seed_0/history.csv"}
    assert s.tables == {}


def test_a_unit_stage_shows_every_run_it_has_computed(tmp_path):
    # One run per value of a params list (foreach: ${section.key}): the runs are read
    # off the files they wrote; their metrics merge (each names its model), every run's
    # history is drawn, and a value no run has computed yet is simply absent.
    stage = {
        "foreach": "${adv_train.eps}",
        "do": {
            "desc": "per eps",
            "meta": {"method": "m", "method_title": "M"},
            "outs": ["artifacts/u/models/at_${item}.pt"],
            "metrics": [{"artifacts/u/metrics/at_${item}.json": {"cache": False}}],
            "plots": [{"artifacts/u/history/at_${item}.csv": {"cache": False}}],
        },
    }
    (tmp_path / "dvc.yaml").write_text(yaml.safe_dump({"stages": {"u": stage}}))
    for eps, acc in (("0.1", 0.4), ("0.02", 0.6)):
        write_json(tmp_path / f"artifacts/u/metrics/at_{eps}.json", {f"at_{eps}": {"acc": acc}})
        history = tmp_path / f"artifacts/u/history/at_{eps}.csv"
        history.parent.mkdir(parents=True, exist_ok=True)
        history.write_text(f"model,epoch,acc\nat_{eps},1,{acc}\nat_{eps},2,{acc + 0.1}\n")
    (s,) = read_sections(tmp_path / "dvc.yaml")
    assert s.seeds == []  # runs, not seeds
    assert s.metrics == {"at_0.02": {"acc": 0.6}, "at_0.1": {"acc": 0.4}}
    drawn = [c.source for c in s.curves]
    assert drawn == ["artifacts/u/history/at_0.02.csv", "artifacts/u/history/at_0.1.csv"]


def test_a_unit_stage_leaves_out_a_run_its_params_list_no_longer_names(tmp_path):
    # DVC leaves a removed run's files in place: at_0.1 was computed, then 0.1 was taken
    # out of adv_train.eps; the report shows the listed runs only.
    stage = {
        "foreach": "${adv_train.eps}",
        "do": {"metrics": [{"artifacts/u/metrics/at_${item}.json": {"cache": False}}]},
    }
    (tmp_path / "dvc.yaml").write_text(yaml.safe_dump({"stages": {"u": stage}}))
    for eps in ("0.1", "0.02"):
        write_json(tmp_path / f"artifacts/u/metrics/at_{eps}.json", {f"at_{eps}": {"acc": 1}})
    (tmp_path / "params.yaml").write_text("adv_train:\n  eps: [0.02, 0.06]\n")
    (s,) = read_sections(tmp_path / "dvc.yaml")
    assert s.metrics == {"at_0.02": {"acc": 1}}  # 0.06 is listed but not computed yet
    (tmp_path / "params.yaml").write_text("adv_train:\n  eps: [0.1, 0.02]\n")
    (s,) = read_sections(tmp_path / "dvc.yaml")
    assert s.metrics == {"at_0.02": {"acc": 1}, "at_0.1": {"acc": 1}}


def test_a_profile_draws_the_curves_the_default_dvc_yaml_declares(tmp_path):
    sections = read_profile_sections(_curved_repo(tmp_path))
    prof = next(s for s in sections if s.name == "p/s")
    acc = next(c for c in prof.curves if c.title == "Accuracy")
    assert acc.source == "artifacts/p/s/seed_0/curve.csv"
    assert acc.series[0].y == [0.7, 0.6]


def test_curve_specs_match_each_plot_to_its_stage_output():
    spec = yaml.safe_load((ROOT / "dvc.yaml").read_text())
    specs = curve_specs(spec)
    declared = [e for e in spec["plots"] if isinstance(e, dict)]
    assert sum(len(v) for v in specs.values()) == len(declared)  # every curve has its output
    assert {name for name, _ in specs} >= {"train", "accuracy", "lan_detect", "igan_vulnerability"}


def test_history_curve_needs_an_epoch_and_prefers_accuracy_to_loss():
    assert history_curve(pd.DataFrame({"step": [1], "acc": [0.5]}), "h.csv") is None
    loss_only = history_curve(pd.DataFrame({"epoch": [1, 2], "loss": [2.0, 1.0]}), "h.csv")
    assert loss_only is not None and [s.label for s in loss_only.series] == ["loss"]


@pytest.mark.parametrize("text", ["stages: [unclosed", "- a list"])
def test_bad_dvc_yaml_is_a_store_error(tmp_path, text):
    (tmp_path / "dvc.yaml").write_text(text)
    with pytest.raises(StoreError, match="dvc.yaml"):
        read_sections(tmp_path / "dvc.yaml")
    with pytest.raises(StoreError, match="not found"):
        read_sections(tmp_path / "absent.yaml")


def test_flatten_dots_nested_keys_and_summarises_long_lists():
    from advinterp.report import flatten

    nested = {"a": {"b": 1, "c": [1, 2, 3]}, "d": 2}
    assert flatten(nested) == {"a.b": 1, "a.c": [1, 2, 3], "d": 2}
    assert flatten(nested, max_list=2) == {"a.b": 1, "a.c": "[3 values]", "d": 2}


def test_metrics_frame_puts_seeds_side_by_side():
    frame = metrics_frame({"seed 0": {"a": {"b": 0.5}}, "seed 1": {"a": {"b": 0.25}, "c": 1}})
    assert list(frame.columns) == ["metric", "seed 0", "seed 1"]
    assert frame.values.tolist() == [["a.b", "0.5", "0.25"], ["c", "", "1"]]
    assert metrics_frame({"x": 1}).values.tolist() == [["x", "1"]]


# -- rendering ------------------------------------------------------------------------------


def test_render_groups_by_method_in_first_appearance_order(tmp_path):
    page = render_report(read_sections(_repo(tmp_path)))
    assert page.index("<h2 id='method-m1'>") < page.index("<h2 id='method-m2'>")
    # 'three' belongs to m1, so it sits before the m2 heading
    assert page.index("<section id='stage-three'>") < page.index("<h2 id='method-m2'>")
    assert "nested.k" in page and "data:image/" in page


def test_sections_without_method_go_under_other():
    page = render_report([StageSection("x", "d")])
    assert "<h2 id='method-other'>Other stages</h2>" in page


def test_page_ids_are_unique_even_where_a_stage_a_method_and_the_findings_share_a_name(
    tmp_path,
):
    sections = read_profile_sections(_curved_repo(tmp_path))
    sections.append(StageSection("findings", "counts", "findings", "Findings", {"reproduced": 1}))
    cards = {
        "m": OverviewCard("m", "M", "artifacts/s/seed_0/curve.csv", []),
        "findings": OverviewCard("findings", "Findings", None, []),
    }
    page = render_report(sections, findings={"findings": []}, cards=cards)
    ids = _ids(page)
    assert len(ids) == len(set(ids)), sorted(i for i in ids if ids.count(i) > 1)
    assert {"findings", "method-findings", "stage-findings", "overview-m"} <= set(ids)
    # s: ROC and history (its Accuracy is the card's); p/s: all three; the card: one
    assert page.count('<svg class="plot"') == 6
    assert "<?xml" not in page and "<!DOCTYPE svg" not in page


def test_tables_scroll_inside_their_box_and_long_ones_and_raw_metrics_are_folded():
    short = pd.DataFrame({"a": [1, 2], "b": ["x", "<y>"]})
    long = pd.DataFrame({"a": range(50)})
    section = StageSection("s", metrics={"k": 1}, tables={"short": short, "long": long})
    page = render_report([section])
    assert page.count("<div class='scroll'>") == 3
    assert "<details><summary>long (50 rows × 1)</summary>" in page
    assert "<details><summary>all metrics (1)</summary>" in page
    assert "&lt;y&gt;" in page and "<y>" not in page
    # one row a line: tests/stages/test_determinism.py drops timing rows by this shape
    assert "<tr><td>k</td><td>1</td></tr>" in page
    assert page.index("<h4>short</h4>") < page.index("<details>")  # a short table is shown


def test_the_overview_comes_after_the_lead_and_shows_its_figure_once(tmp_path):
    sections = read_sections(_repo(tmp_path))
    sections[0].method = "lead"
    card = OverviewCard("m1", "Method one", "a/figs/f.png", [], "what to look at")
    page = render_report(sections, lead=("lead",), cards={"m1": card})
    assert page.index("id='method-lead'") < page.index("id='overview'")
    assert page.index("id='overview-m1'") < page.index("id='method-m1'")
    assert page.count("data:image/") == 1  # the card has it; the stage points at it
    assert "<a href='#overview-m1'>overview</a>" in page


# -- media ----------------------------------------------------------------------------------


def test_compact_image_caps_the_width_flattens_alpha_and_shrinks_the_file():
    noisy = Image.effect_noise((2400, 600), 40).convert("RGBA")
    buf = io.BytesIO()
    noisy.save(buf, format="PNG")
    img = compact_image(buf.getvalue())
    assert (img.width, img.height) == (1000, 250)
    assert len(img.data) < len(buf.getvalue()) / 2
    with Image.open(io.BytesIO(img.data)) as back:
        assert back.size == (1000, 250) and back.mode == "RGB"
    flat = compact_image(_png((300, 100)))  # a flat figure stays lossless
    assert flat.mime in ("image/png", "image/webp") and flat.width == 300
    with Image.open(io.BytesIO(flat.data)) as back:
        assert back.convert("RGB").getpixel((5, 5)) == (200, 30, 30)


def test_compact_image_passes_undecodable_bytes_through():
    raw = b"\x89PNG\r\n\x1a\n" + b"\0" * 16
    assert compact_image(raw).data == raw and compact_image(raw).uri.startswith("data:image/png")


def test_curve_svg_is_inline_ready_repeatable_and_keeps_its_text():
    curve = CurveData(
        "t", "eps", [Series("a", [0.0025, 0.01, 0.04, 0.12], [0.7, 0.5, 0.1, 0.0])], "c.csv"
    )
    svg = curve_svg(curve, "u1")
    assert svg.startswith('<svg class="plot"') and svg.endswith("</svg>")
    assert svg == curve_svg(curve, "u1")  # a rerun writes the same page
    ids = _ids(svg)
    assert ids and all(i.startswith("u1-") for i in ids)
    assert ">0.0025<" in svg  # tick labels are the measured eps (log axis), not rounded
    assert "<style" not in svg and "font-family: 'DejaVu" not in svg


# -- overview declarations ------------------------------------------------------------------


def test_every_overview_number_and_figure_exists_in_the_committed_results():
    assert problems(ROOT) == []


def test_every_overview_is_of_a_method_on_the_page():
    """No stale declaration. A method without one is shown without a card (adding a
    method stays five files)."""
    methods = set()
    for path in [ROOT / "dvc.yaml", *sorted(ROOT.glob("profiles/*/dvc.yaml"))]:
        for whole in yaml.safe_load(path.read_text())["stages"].values():
            meta = whole.get("do", whole).get("meta") or {}
            if not meta.get("gathers"):
                methods.add(meta["method"])
    assert set(OVERVIEWS) <= methods, set(OVERVIEWS) - methods
    assert all(len(ov.numbers) == 3 for ov in OVERVIEWS.values())
    assert all(p.startswith("artifacts/") for p in declared_paths())


def test_lookup_walks_keys_that_hold_dots():
    data = {"untargeted": {"eps_0.01": {"sje": 0.3}, "eps_0.1": {"sje": 0.1}}, "a.b": 1}
    assert lookup(data, "untargeted.eps_0.01.sje") == 0.3
    assert lookup(data, "a.b") == 1
    with pytest.raises(KeyError):
        lookup(data, "untargeted.eps_0.02.sje")


def test_numbers_are_spread_over_seeds_and_a_renamed_metric_is_named(tmp_path):
    for seed, v in [(0, 0.5), (2, 0.7), (10, 0.6)]:
        (tmp_path / f"seed_{seed}").mkdir()
        (tmp_path / f"seed_{seed}" / "m.json").write_text(json.dumps({"a": {"b": v}, "n": 3}))
    (tmp_path / "one.json").write_text(json.dumps({"s": {"mean": 0.25, "sd": 0.5, "n": 4}}))
    seeded = number_text(tmp_path, KeyNumber("seed_{seed}/m.json", "a.b", "label"))
    assert (seeded.text, seeded.over) == ("0.600 ± 0.100", "mean ± sd over 3 seeds")
    count = number_text(tmp_path, KeyNumber("seed_{seed}/m.json", "n", "count"))
    assert count.text == "3.000 ± 0.000"
    spread = number_text(tmp_path, KeyNumber("one.json", "s", "spread"))
    assert (spread.text, spread.over) == ("0.250 ± 0.500", "mean ± sd, n = 4")
    assert first_seed(tmp_path, "seed_{seed}/m.json") == "seed_0/m.json"
    renamed = {"x": Overview((KeyNumber("seed_{seed}/m.json", "a.c", "gone"),) * 3)}
    assert (
        problems(tmp_path, renamed)
        == ["x: " + f"{tmp_path / 'seed_0' / 'm.json'}: no metric 'a.c'"] * 3
    )
    card = overview_cards(tmp_path, {"x": "X"}, renamed)["x"]
    assert [n.text for n in card.numbers] == ["missing"] * 3  # the page still renders


def test_the_report_stage_depends_on_every_file_an_overview_reads():
    """DVC reruns the report when a number or figure of an overview changes."""
    deps = set(yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]["report"]["deps"])
    for ov in OVERVIEWS.values():
        for number in ov.numbers:
            paths = [p.relative_to(ROOT).as_posix() for p in seed_paths(ROOT, number.metrics)]
            assert paths and set(paths) <= deps, (number.metrics, set(paths) - deps)
        if ov.figure:
            assert first_seed(ROOT, ov.figure) in deps, ov.figure
