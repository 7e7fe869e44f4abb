"""advinterp.analysis.spread: mean and sample sd over seeds, checked by hand."""

from __future__ import annotations

import math

import pytest

from advinterp.analysis.spread import is_spread, spread


def test_spread_is_the_mean_and_the_sample_sd():
    s = spread([1.0, 2.0, 6.0])
    assert s["mean"] == pytest.approx(3.0)
    # sum of squares 4 + 1 + 9 = 14 over n - 1 = 2
    assert s["sd"] == pytest.approx(math.sqrt(7.0))
    assert s["n"] == 3 and s["values"] == [1.0, 2.0, 6.0]
    assert is_spread(s) and not is_spread({"mean": 1.0})


def test_one_value_has_no_spread_and_none_or_nan_is_refused():
    assert spread([0.5])["sd"] == 0.0
    with pytest.raises(ValueError, match="no values"):
        spread([])
    with pytest.raises(ValueError, match="NaN"):
        spread([1.0, float("nan")])
