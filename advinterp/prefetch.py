"""Read the next shard of a zarr array while the current one computes.

A shard-mapped stage (:mod:`advinterp.shards`) reads a shard's images, computes, writes
the results, then reads the next shard: the read waits on the disk and the codec while
the model waits on the read. :class:`ReadAhead` reads ``array[sl]`` like a plain slice
but, after each shard, starts reading the shard that follows in a background thread, so
that read overlaps the current shard's forward passes and writes. The arrays returned
are the same bytes a plain read gives; only when they are read changes.
"""

from __future__ import annotations

import logging
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import numpy as np

log = logging.getLogger(__name__)


class ReadAhead:
    """``reader(sl)`` = ``np.asarray(array[sl])``, the following shard read in the background.

    The following shard is guessed as the next ``sl.stop - sl.start`` rows (the shard
    grid of :func:`advinterp.store.shard_slices`); a slice other than the guess is read
    directly, and the guess is dropped. At most one shard is held ahead.

    Args:
        array: anything sliceable along its first axis with a ``shape`` (a zarr array).
    """

    def __init__(self, array: Any) -> None:
        self._array = array
        self._n = int(array.shape[0])
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="read-ahead")
        self._ahead: tuple[tuple[int, int], Future[np.ndarray]] | None = None
        self.hits = 0  # shards that were already read ahead (tests and logs)

    def _read(self, start: int, stop: int) -> np.ndarray:
        return np.asarray(self._array[start:stop])

    def __call__(self, sl: slice) -> np.ndarray:
        start, stop, _ = sl.indices(self._n)
        ahead, self._ahead = self._ahead, None
        if ahead is not None and ahead[0] == (start, stop):
            data = ahead[1].result()
            self.hits += 1
        else:
            if ahead is not None:
                ahead[1].cancel()  # a read already under way finishes, unused
            data = self._read(start, stop)
        if stop < self._n:
            following = (stop, min(self._n, 2 * stop - start))
            self._ahead = (following, self._pool.submit(self._read, *following))
        return data

    def close(self) -> None:
        """Drop the shard read ahead and stop the thread (waits for a read under way)."""
        if self._ahead is not None:
            self._ahead[1].cancel()
            self._ahead = None
        self._pool.shutdown(wait=True)
