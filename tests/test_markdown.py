"""advinterp.markdown: generated spans are re-rendered from metrics, comments kept."""

from __future__ import annotations

import json

import pytest

from advinterp.errors import StoreError
from advinterp.markdown import Sources, fill, format_value, lookup


@pytest.fixture
def root(tmp_path):
    (tmp_path / "m.json").write_text(json.dumps({"acc": 0.73333, "per": {"a": [0.5, 0.25]}}))
    (tmp_path / "t.csv").write_text("layer,vul\nconv1,0.123456\nfc1,2\n")
    return tmp_path


def test_values_tables_and_texts_are_filled_and_refillable(root):
    text = (
        "acc <!-- g: value m.json acc .2f -->OLD<!-- /g --> and "
        "<!-- g: value m.json per.a.1 pct -->x<!-- /g -->.\n"
        "<!-- g: csv t.csv -->\nstale\n<!-- /g -->\n"
        "<!-- g: metrics m.json acc per.a.0 --><!-- /g -->\n"
        "<!-- g: text dag -->?<!-- /g -->\n"
        "<!-- g: file t.csv -->?<!-- /g -->\n"
    )
    out = fill(text, Sources(root, {"dag": lambda: "graph"}))
    assert "acc <!-- g: value m.json acc .2f -->0.73<!-- /g --> and" in out
    assert "-->25 %<!-- /g -->" in out
    assert "| layer | vul |\n|---|---|\n| conv1 | 0.123 |\n| fc1 | 2 |" in out
    assert "| acc | 0.733 |" in out and "| per.a.0 | 0.5 |" in out
    assert "<!-- g: text dag -->\ngraph\n<!-- /g -->" in out
    assert "<!-- g: file t.csv -->\nlayer,vul\nconv1,0.123456\nfc1,2\n<!-- /g -->" in out
    assert fill(out, Sources(root, {"dag": lambda: "graph"})) == out  # a fixed point


def test_a_missing_file_or_key_is_a_clear_error(root):
    with pytest.raises(StoreError, match=r"absent\.json: not found"):
        fill("<!-- g: value absent.json a -->1<!-- /g -->", Sources(root))
    with pytest.raises(StoreError, match="no key 'nope'"):
        fill("<!-- g: value m.json nope -->1<!-- /g -->", Sources(root))
    with pytest.raises(ValueError, match="unknown generated span kind"):
        fill("<!-- g: chart m.json -->1<!-- /g -->", Sources(root))


def test_lookup_and_format():
    assert lookup({"a": [{"b": 3}]}, "a.0.b") == 3
    dotted = {"at_0.02": {"adv": 0.3}, "at_0": {"x": 1}, "eps_0.01": 5}
    assert lookup(dotted, "at_0.02.adv") == 0.3 and lookup(dotted, "at_0.x") == 1
    assert lookup(dotted, "eps_0.01") == 5
    with pytest.raises(KeyError):
        lookup(dotted, "at_0.02.missing")
    assert format_value(None) == "n/a" and format_value(0.12345) == "0.123"
    assert format_value(True) == "True" and format_value(0.5, "pct") == "50 %"
