"""advinterp.store resumable outputs: fingerprints, shard markers, partial directories."""

from __future__ import annotations

import logging
import os
import pickle

import numpy as np
import pytest

from advinterp.errors import StoreError
from advinterp.store import (
    ShardMarkers,
    create_array,
    create_group,
    fill_shards,
    fingerprint,
    open_store,
    partial_dir,
    resumable_output,
    write_array,
)


class KilledError(Exception):
    """Stands in for a kill in the middle of a stage."""


def _fill(part, calls, stop_after=None):
    """A stage body: 10 samples in shards of 4, optionally dying after some shards."""
    group = part.group({"params": {"k": 1}})
    write_array(group, "rows", np.arange(10), dims=("sample",), chunk_size=4)
    out = create_array(group, "y", (10, 2), "float32", dims=("sample", "v"), chunk_size=4)

    def compute(sl):
        if stop_after is not None and len(calls) == stop_after:
            raise KilledError
        calls.append(sl.start)
        return {"y": np.stack([np.arange(sl.start, sl.stop)] * 2, 1).astype(np.float32) / 3}

    fill_shards({"y": out}, compute, 10, 4, markers=part.markers("y"))


def _expected():
    return np.stack([np.arange(10)] * 2, 1).astype(np.float32) / 3


# -- fingerprint -------------------------------------------------------------------------


def test_fingerprint_follows_inputs_params_and_code(tmp_path):
    store = tmp_path / "in.zarr"
    (store / "a").mkdir(parents=True)
    (store / "zarr.json").write_text("{}")
    (store / "a" / "c0").write_bytes(b"x" * 100)
    big = tmp_path / "model.pt"
    big.write_bytes(b"w" * (2 << 20))  # above the content-hash limit: size + mtime
    code = tmp_path / "pkg"
    code.mkdir()
    (code / "m.py").write_text("X = 1\n")
    base = fingerprint([store, big], {"lr": 0.1, "eps": [1, 2]}, [code])

    assert len(base) == 16
    assert fingerprint([store, big], {"eps": [1, 2], "lr": 0.1}, [code]) == base  # key order
    (code / "__pycache__").mkdir()
    (code / "__pycache__" / "m.cpython-311.pyc").write_bytes(b"junk")
    (code / "notes.txt").write_text("not code")
    assert fingerprint([store, big], {"lr": 0.1, "eps": [1, 2]}, [code]) == base

    assert fingerprint([store, big], {"lr": 0.2, "eps": [1, 2]}, [code]) != base
    (store / "a" / "c0").write_bytes(b"y" * 100)  # same size, new content
    changed = fingerprint([store, big], {"lr": 0.1, "eps": [1, 2]}, [code])
    assert changed != base
    st = big.stat()
    os.utime(big, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    assert fingerprint([store, big], {"lr": 0.1, "eps": [1, 2]}, [code]) != changed
    (code / "m.py").write_text("X = 2\n")
    assert fingerprint([store, big], {"lr": 0.1, "eps": [1, 2]}, [code]) != changed


def test_fingerprint_names_a_missing_input(tmp_path):
    with pytest.raises(StoreError, match="nope.zarr: not found"):
        fingerprint([tmp_path / "nope.zarr"])


# -- markers -------------------------------------------------------------------------------


def test_markers_record_completed_shards(tmp_path):
    markers = ShardMarkers(tmp_path / "shards" / "standard")
    assert markers.done() == set()
    assert markers.pending(range(4)) == [0, 1, 2, 3]
    markers.mark(2)
    markers.mark(0)
    markers.mark(2)  # idempotent
    assert markers.done() == {0, 2}
    assert markers.pending(range(4)) == [1, 3]
    assert sorted(p.name for p in markers.root.iterdir()) == ["0.done", "2.done"]
    assert pickle.loads(pickle.dumps(markers)).done() == {0, 2}  # travels to workers


def test_fill_shards_skips_marked_shards_and_marks_the_rest(tmp_path, caplog):
    out = create_array(
        create_group(tmp_path / "f.zarr"), "y", (10,), "int64", dims=("s",), chunk_size=4
    )
    markers = ShardMarkers(tmp_path / "m")
    out[4:8] = np.arange(4, 8) * 2
    markers.mark(1)
    calls = []

    def compute(sl):
        calls.append(sl.start)
        return {"y": np.arange(sl.start, sl.stop) * 2}

    with caplog.at_level(logging.INFO, logger="advinterp.store"):
        fill_shards({"y": out}, compute, 10, 4, desc="y", markers=markers)
    assert calls == [0, 8]
    assert "1 of 3 shards already complete" in caplog.text
    assert markers.done() == {0, 1, 2}
    np.testing.assert_array_equal(out[:], np.arange(10) * 2)


# -- resumable_output ----------------------------------------------------------------------


def test_resumable_output_commits_like_atomic_output(tmp_path):
    target = tmp_path / "out.zarr"
    calls: list[int] = []
    with resumable_output(target, "f1") as part:
        assert not part.resumed
        _fill(part, calls)
    assert calls == [0, 4, 8]
    np.testing.assert_allclose(open_store(target, {"y": 2})["y"][:], _expected())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.zarr"]  # no partial, no markers
    assert sorted(p.name for p in target.iterdir()) == ["rows", "y", "zarr.json"]


def test_killed_run_keeps_completed_shards_and_the_rerun_skips_them(tmp_path):
    target = tmp_path / "out.zarr"
    write_array(create_group(target), "old", np.ones(3), dims=("s",), chunk_size=2)
    calls: list[int] = []
    with pytest.raises(KilledError), resumable_output(target, "f1") as part:
        _fill(part, calls, stop_after=2)
    # The previous artifact is untouched; the partial holds 2 completed shards.
    assert sorted(open_store(target).array_keys()) == ["old"]
    root = partial_dir(target, "f1")
    assert root.name == ".out.zarr.partial-f1"
    assert sorted(p.name for p in (root / "shards" / "y").iterdir()) == ["0.done", "1.done"]

    calls.clear()
    with resumable_output(target, "f1") as part:
        assert part.resumed and part.completed() == 2
        _fill(part, calls)
    assert calls == [8]  # only the missing shard
    done = open_store(target, {"y": 2, "rows": 1})
    np.testing.assert_allclose(done["y"][:], _expected())
    np.testing.assert_array_equal(done["rows"][:], np.arange(10))
    assert done.attrs["params"] == {"k": 1}
    assert not root.exists()


def test_a_new_fingerprint_discards_the_stale_partial(tmp_path):
    target = tmp_path / "out.zarr"
    with pytest.raises(KilledError), resumable_output(target, "old") as part:
        _fill(part, [], stop_after=1)
    assert partial_dir(target, "old").is_dir()
    calls: list[int] = []
    with resumable_output(target, "new") as part:
        assert not part.resumed
        _fill(part, calls)
    assert calls == [0, 4, 8]
    assert not partial_dir(target, "old").exists()


def test_failure_before_any_shard_leaves_nothing(tmp_path):
    target = tmp_path / "out.zarr"
    with pytest.raises(KilledError), resumable_output(target, "f") as part:
        part.group()
        raise KilledError
    assert list(tmp_path.iterdir()) == []


def test_second_concurrent_run_is_refused(tmp_path):
    target = tmp_path / "out.zarr"
    with resumable_output(target, "f") as part:
        with (
            pytest.raises(StoreError, match="another run is writing"),
            resumable_output(target, "f"),
        ):
            pass
        _fill(part, [])
    assert open_store(target, {"y": 2})["y"].shape == (10, 2)


def test_reopening_an_array_with_another_layout_is_an_error(tmp_path):
    group = create_group(tmp_path / "g.zarr")
    create_array(group, "y", (10,), "int64", dims=("s",), chunk_size=4)
    assert create_array(group, "y", (10,), "int64", dims=("s",), chunk_size=4).shape == (10,)
    with pytest.raises(StoreError, match="different layout"):
        create_array(group, "y", (12,), "int64", dims=("s",), chunk_size=4)
