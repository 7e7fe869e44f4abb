"""Streaming batches out of sample-chunked arrays with bounded memory.

Arrays here are anything indexable along axis 0 by a slice (a zarr array, a numpy
array). Reads follow the storage shards, so a stage touches each shard once and
holds at most one shard (sequential) or one shuffle buffer (training) in memory.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import numpy as np

from advinterp.data.dataset import TEST, TRAIN, VAL
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


class SplitBatches:
    """Labelled batches of the train, val and test splits, for training a classifier.

    ``array`` holds one sample per dataset row (images, or LAN masks), in the order of
    ``labels`` and ``split`` (those of the dataset's :class:`AttributeIndex`).

    Shape:
        array: (N, ...); labels: (N,) int64; split: (N,) int8 codes TRAIN/VAL/TEST.
        every batch: (data (b, ...), labels (b,) int64) with b <= ``batch_size``.
    """

    def __init__(
        self,
        array: Any,
        labels: np.ndarray,
        split: np.ndarray,
        batch_size: int,
        chunk_size: int,
    ):
        self.array = array
        self.labels = np.asarray(labels)
        self.rows = {s: np.flatnonzero(split == s) for s in (TRAIN, VAL, TEST)}
        self.batch_size = batch_size
        self.chunk_size = chunk_size

    @property
    def steps_per_epoch(self) -> int:
        """Batches in one pass over the train split."""
        return math.ceil(len(self.rows[TRAIN]) / self.batch_size)

    @property
    def monitor(self) -> int:
        """The split that watches training: VAL, or TEST where the val split is empty."""
        return VAL if len(self.rows[VAL]) else TEST

    def shuffled(
        self, rng: np.random.Generator, buffer_size: int
    ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """One epoch of the train split in shuffled order (:func:`iter_shuffled_batches`)."""
        return self._labelled(
            iter_shuffled_batches(
                self.array, self.rows[TRAIN], self.batch_size, self.chunk_size, buffer_size, rng
            )
        )

    def ordered(self, split: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """The rows of ``split`` in increasing order (:func:`iter_batches`)."""
        return self._labelled(
            iter_batches(self.array, self.rows[split], self.batch_size, self.chunk_size)
        )

    def _labelled(
        self, batches: Iterator[tuple[np.ndarray, np.ndarray]]
    ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        for idx, data in batches:
            yield data, self.labels[idx]
