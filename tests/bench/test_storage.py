"""bench.storage on a tiny IFGSM-like stand-in: both layouts hold the same values, the
relative one is smaller, and the benchmark is registered right after ``features``."""

from __future__ import annotations

import numpy as np

from advinterp.store import open_store, read_array
from bench import storage
from bench.__main__ import BENCHMARKS


def test_registered_after_features():
    assert BENCHMARKS.index("storage") == BENCHMARKS.index("features") + 1


def test_both_layouts_hold_the_stand_in_bitwise_and_relative_is_smaller(tmp_path):
    clean, sets, source = storage._stand_in(n=70, size=8, steps=4)
    assert len(sets) == 28 and "stand-in" in source
    old, new = tmp_path / "old.zarr", tmp_path / "new.zarr"
    storage._write(old, clean, sets, relative=False)
    storage._write(new, clean, sets, relative=True)
    for path in (old, new):
        store = open_store(path)
        for p, *_, values in sets:
            got = read_array(store, f"{p}/images")
            np.testing.assert_array_equal(got.view(np.uint32), values.view(np.uint32), p)
        storage._read(path, sets)
        storage._read(path, sets, 3)
    names = [f"{p}/images" for p, *_ in sets]
    relative = storage._bytes(new, [*names, "clean"])
    assert relative < storage._bytes(old, names) / 2
