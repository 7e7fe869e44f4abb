"""advinterp.prefetch.ReadAhead: the same arrays as plain reads, the next shard read ahead."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from advinterp.prefetch import ReadAhead
from advinterp.store import atomic_output, create_group, open_store, shard_slices, write_array

N, CHUNK = 27, 8  # a short last shard


@pytest.fixture
def images(tmp_path):
    """A zarr array of N images in shards of CHUNK, and the same numbers in memory."""
    data = np.random.default_rng(0).random((N, 3, 4, 4), dtype=np.float32)
    with atomic_output(tmp_path / "images.zarr") as tmp:
        write_array(
            create_group(tmp), "images", data, dims=("sample", "c", "y", "x"), chunk_size=CHUNK
        )
    return open_store(tmp_path / "images.zarr", {"images": 4})["images"], data


def test_shards_in_order_are_read_ahead_and_equal_plain_reads(images):
    arr, data = images
    reader = ReadAhead(arr)
    try:
        for sl in shard_slices(N, CHUNK):
            np.testing.assert_array_equal(reader(sl), data[sl])
        assert reader.hits == len(shard_slices(N, CHUNK)) - 1
    finally:
        reader.close()


def test_shards_out_of_order_are_still_right(images):
    arr, data = images
    slices = shard_slices(N, CHUNK)
    reader = ReadAhead(arr)
    try:
        for k in (2, 0, 1, 3, 3):
            np.testing.assert_array_equal(reader(slices[k]), data[slices[k]])
        assert reader.hits == 1  # only 0 -> 1 was read ahead
    finally:
        reader.close()


def test_the_read_ahead_runs_in_another_thread():
    seen: list[str] = []

    class Recording:
        shape = (16,)

        def __getitem__(self, sl: slice) -> np.ndarray:
            seen.append(threading.current_thread().name)
            return np.arange(16)[sl]

    reader = ReadAhead(Recording())
    np.testing.assert_array_equal(reader(slice(0, 8)), np.arange(8))
    np.testing.assert_array_equal(reader(slice(8, 16)), np.arange(8, 16))
    reader.close()
    assert seen[0] == threading.current_thread().name
    assert seen[1].startswith("read-ahead")
    assert len(seen) == 2, "nothing is read past the end"


def test_close_stops_the_thread(images):
    arr, _ = images
    reader = ReadAhead(arr)
    reader(slice(0, CHUNK))  # leaves a read ahead pending or done
    reader.close()
    assert not any(t.name.startswith("read-ahead") and t.is_alive() for t in threading.enumerate())
