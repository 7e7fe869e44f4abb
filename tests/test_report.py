"""advinterp.report: sections read from a dvc.yaml, grouped by the method in its meta."""

from __future__ import annotations

import json

import pytest
import yaml

from advinterp.errors import StoreError
from advinterp.report import StageSection, read_sections, render_report

PNG = b"\x89PNG\r\n\x1a\n" + b"\0" * 16


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


def test_read_sections_takes_metrics_tables_figures_and_skips_the_gathering_stage(tmp_path):
    sections = read_sections(_repo(tmp_path))
    assert [s.name for s in sections] == ["one", "two", "three"]
    one = sections[0]
    assert one.method == "m1" and one.method_title == "Method one (A et al.)"
    assert one.metrics == {"acc": 0.5, "nested": {"k": 2}}
    assert one.tables["a/curve.csv"]["y"].tolist() == [1, 3]
    assert one.figures == [("a/figs/f.png", PNG)]
    assert sections[1].metrics == {}  # a result not computed yet is skipped, not an error


def test_render_groups_by_method_in_first_appearance_order(tmp_path):
    page = render_report(read_sections(_repo(tmp_path)))
    assert page.index("<h2 id='m1'>") < page.index("<h2 id='m2'>")
    # 'three' belongs to m1, so it sits before the m2 heading
    assert page.index('<section id="three">') < page.index("<h2 id='m2'>")
    assert "nested.k" in page and "data:image/png;base64," in page


def test_sections_without_method_go_under_other():
    page = render_report([StageSection("x", "d")])
    assert "<h2 id='other'>Other stages</h2>" in page


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
