"""advinterp.analysis.seed_tables: a paper's table beside ours, cells over seeds."""

from __future__ import annotations

import pytest

from advinterp.analysis.seed_tables import SeedTable, fill, render
from advinterp.errors import StoreError

TABLE = SeedTable(
    "T",
    "lan",
    "src",
    ("TP", "at eps"),
    (("fgsm", (("t2.fgsm.tp", "0.878"), ("acc.eps_0.3", ""))),),
)


def test_each_cell_is_the_spread_of_its_key_over_the_runs():
    runs = [{"t2": {"fgsm": {"tp": v}}, "acc": {"eps_0.3": 1 - v}} for v in (0.8, 0.9, 1.0)]
    filled = fill(TABLE, runs)
    tp, acc = filled["rows"][0]["cells"]
    assert tp["ours"]["mean"] == pytest.approx(0.9) and tp["ours"]["sd"] == pytest.approx(0.1)
    assert acc["ours"]["values"] == pytest.approx([0.2, 0.1, 0.0])
    text = render(filled)
    assert "| fgsm | 0.900 ± 0.100 [0.878] | 0.100 ± 0.100 |" in text
    assert "over 3 seeds" in text


def test_a_missing_cell_names_the_file_and_key_and_a_null_one_counts_its_seeds():
    with pytest.raises(StoreError, match=r"m\.json: no 't2\.fgsm\.tp'"):
        fill(TABLE, [{"acc": {"eps_0.3": 0.5}}], "m.json")
    runs = [{"t2": {"fgsm": {"tp": v}}, "acc": {"eps_0.3": None}} for v in (None, 0.5, 0.7)]
    filled = fill(TABLE, runs)
    tp, acc = filled["rows"][0]["cells"]
    assert tp["ours"]["values"] == [0.5, 0.7] and acc["ours"] is None
    assert "| fgsm | 0.600 ± 0.141 (2 of 3 seeds) [0.878] | — |" in render(filled)
