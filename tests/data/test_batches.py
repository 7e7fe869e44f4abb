"""Streaming batches out of sharded arrays: every requested row exactly once, shard-wise."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from advinterp.data.batches import iter_batches, iter_shuffled_batches


class CountingArray:
    """A numpy array that records the slices read from it (like a zarr array would see)."""

    def __init__(self, data: np.ndarray):
        self.data, self.shape, self.reads = data, data.shape, []

    def __getitem__(self, key):
        self.reads.append(key)
        return self.data[key]


def _array(n: int) -> np.ndarray:
    return np.arange(n * 3, dtype=np.float32).reshape(n, 3)


CASES = st.integers(1, 40).flatmap(
    lambda n: st.tuples(
        st.just(n),
        st.lists(st.integers(0, n - 1), unique=True, max_size=n),
        st.integers(1, 9),  # batch size
        st.integers(1, 12),  # chunk (shard) size
    )
)


@settings(max_examples=60, deadline=None)
@given(CASES)
def test_iter_batches_yields_each_row_once_in_order(case):
    n, rows, batch, chunk = case
    arr = CountingArray(_array(n))
    got = list(iter_batches(arr, np.array(rows, dtype=np.int64), batch, chunk))
    idx = np.concatenate([i for i, _ in got]) if got else np.zeros(0, np.int64)
    np.testing.assert_array_equal(idx, np.sort(rows))
    for i, data in got:
        np.testing.assert_array_equal(data, arr.data[i])
    sizes = [len(i) for i, _ in got]
    assert all(s == batch for s in sizes[:-1]) and all(0 < s <= batch for s in sizes)
    # each shard is read at most once, and only whole shards are read
    assert len(arr.reads) == len(set((r.start, r.stop) for r in arr.reads))
    assert all(r.start % chunk == 0 for r in arr.reads)


@settings(max_examples=60, deadline=None)
@given(CASES, st.integers(1, 50), st.integers(0, 2**16))
def test_iter_shuffled_batches_cover_every_row_once(case, buffer, seed):
    n, rows, batch, chunk = case
    arr = _array(n)
    got = list(
        iter_shuffled_batches(
            arr, np.array(rows, np.int64), batch, chunk, buffer, np.random.default_rng(seed)
        )
    )
    idx = np.concatenate([i for i, _ in got]) if got else np.zeros(0, np.int64)
    assert sorted(idx.tolist()) == sorted(rows)
    for i, data in got:
        np.testing.assert_array_equal(data, arr[i])
        assert 0 < len(i) <= batch


def test_shuffled_batches_are_seeded_and_shuffled():
    arr = _array(200)
    rows = np.arange(0, 200, 2)

    def order(seed: int) -> list[int]:
        rng = np.random.default_rng(seed)
        return np.concatenate(
            [i for i, _ in iter_shuffled_batches(arr, rows, 16, 20, 1000, rng)]
        ).tolist()

    assert order(1) == order(1)
    assert order(1) != order(2)
    assert order(1) != sorted(order(1))
