"""Streaming batches out of sample-chunked arrays with bounded memory.

Arrays here are anything indexable along axis 0 by a slice (a zarr array, a numpy
array). Reads follow the storage shards, so a stage touches each shard once and
holds at most one shard (sequential) or one shuffle buffer (training) in memory.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

from advinterp.store import shard_slices


def _read_rows(
    array: Any, rows: np.ndarray, chunk_size: int
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Yield (row indices, data) per storage shard, for sorted ``rows``."""
    for sl in shard_slices(int(array.shape[0]), chunk_size):
        lo, hi = np.searchsorted(rows, [sl.start, sl.stop])
        if lo == hi:
            continue
        block = np.asarray(array[sl])
        take = rows[lo:hi]
        yield take, block[take - sl.start]


def iter_batches(
    array: Any,
    rows: np.ndarray,
    batch_size: int,
    chunk_size: int,
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Batches of ``array[rows]`` in increasing row order.

    Returns:
        Iterator of (row indices (b,), data (b, ...)), b <= batch_size.
    """
    rows = np.sort(np.asarray(rows, dtype=np.int64))
    buf_idx: list[np.ndarray] = []
    buf: list[np.ndarray] = []
    held = 0
    for idx, data in _read_rows(array, rows, chunk_size):
        buf_idx.append(idx)
        buf.append(data)
        held += len(idx)
        while held >= batch_size:
            all_idx, all_data = np.concatenate(buf_idx), np.concatenate(buf)
            yield all_idx[:batch_size], all_data[:batch_size]
            buf_idx, buf = [all_idx[batch_size:]], [all_data[batch_size:]]
            held -= batch_size
    if held:
        yield np.concatenate(buf_idx), np.concatenate(buf)


def iter_shuffled_batches(
    array: Any,
    rows: np.ndarray,
    batch_size: int,
    chunk_size: int,
    buffer_size: int,
    rng: np.random.Generator,
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Shuffled batches of ``array[rows]`` for training, through a shuffle buffer.

    Shards are visited in random order and their rows pooled in a buffer of about
    ``buffer_size`` samples, which is permuted and cut into batches. With a buffer
    at least as large as ``rows`` this is a full random permutation.
    """
    rows = np.sort(np.asarray(rows, dtype=np.int64))
    shards = shard_slices(int(array.shape[0]), chunk_size)
    order = rng.permutation(len(shards))
    pool_idx: list[np.ndarray] = []
    pool: list[np.ndarray] = []
    held = 0

    def drain(final: bool) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        nonlocal pool_idx, pool, held
        idx, data = np.concatenate(pool_idx), np.concatenate(pool)
        perm = rng.permutation(len(idx))
        idx, data = idx[perm], data[perm]
        cut = len(idx) if final else (len(idx) // batch_size) * batch_size
        for s in range(0, cut, batch_size):
            yield idx[s : s + batch_size], data[s : s + batch_size]
        pool_idx, pool, held = [idx[cut:]], [data[cut:]], len(idx) - cut

    for k in order:
        sl = shards[k]
        lo, hi = np.searchsorted(rows, [sl.start, sl.stop])
        if lo == hi:
            continue
        take = rows[lo:hi]
        pool_idx.append(take)
        pool.append(np.asarray(array[sl])[take - sl.start])
        held += len(take)
        if held >= buffer_size:
            yield from drain(final=False)
    if held:
        yield from drain(final=True)
