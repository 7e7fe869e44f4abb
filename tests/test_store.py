"""advinterp.store: atomic outputs, sharded arrays, schema checks."""

from __future__ import annotations

import numpy as np
import pytest
import zarr
from zarr.codecs import BloscCodec

from advinterp.errors import StoreError
from advinterp.store import (
    atomic_output,
    chunk_files,
    create_array,
    create_group,
    fill_shards,
    open_store,
    read_array,
    read_json,
    require_array,
    sample_chunk_size,
    shard_slices,
    store_dir,
    str_list_attr,
    write_array,
    write_json,
)


def test_atomic_output_replaces_only_on_success(tmp_path):
    target = tmp_path / "out.json"
    write_json(target, {"v": 1})
    with pytest.raises(RuntimeError), atomic_output(target) as tmp:
        tmp.write_text("half-written")
        raise RuntimeError("killed")
    assert read_json(target) == {"v": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["out.json"]
    write_json(target, {"v": 2})
    assert read_json(target) == {"v": 2}


def test_atomic_output_directory_and_stale_cleanup(tmp_path):
    target = tmp_path / "store.zarr"
    stale = tmp_path / ".store.zarr.tmp-99999"
    stale.mkdir()
    (stale / "junk").write_text("x")
    with atomic_output(target) as tmp:
        write_array(create_group(tmp), "a", np.arange(10), dims=("sample",), chunk_size=4)
    assert not stale.exists()
    np.testing.assert_array_equal(open_store(target, {"a": 1})["a"][:], np.arange(10))


def test_atomic_output_requires_the_output(tmp_path):
    with pytest.raises(StoreError, match="without writing"), atomic_output(tmp_path / "x.json"):
        pass


def test_arrays_are_sharded_by_chunk_size_with_attrs(tmp_path):
    group = create_group(tmp_path / "s.zarr", {"params": {"k": 1}})
    data = np.random.default_rng(0).random((10, 3, 4, 4), dtype=np.float32)
    arr = write_array(
        group, "images", data, dims=("sample", "c", "y", "x"), chunk_size=4, attrs={"range": [0, 1]}
    )
    assert sample_chunk_size(arr) == 4
    assert arr.dtype == np.float32
    reopened = open_store(tmp_path / "s.zarr", {"images": 4})
    np.testing.assert_array_equal(reopened["images"][:], data)
    assert reopened["images"].attrs["dims"] == ["sample", "c", "y", "x"]
    assert reopened.attrs["params"] == {"k": 1}
    # One shard file per 4 samples: 3 shards, not one file per inner chunk.
    shard_files = [
        p
        for p in (tmp_path / "s.zarr" / "images").rglob("*")
        if p.is_file() and p.name != "zarr.json"
    ]
    assert len(shard_files) == 3
    # ...named c.<i>.0.0.0 beside zarr.json: no directory per chunk-key level (DVC walks
    # every directory of every output it checks).
    assert sorted(f.name for f in shard_files) == [f"c.{i}.0.0.0" for i in range(3)]
    assert not [d for d in (tmp_path / "s.zarr").rglob("*") if d.is_dir() and d.name == "c"]


def test_stores_with_nested_chunk_keys_still_read(tmp_path):
    """A store written before chunk keys were flat (zarr's default ``c/0/0``)."""
    data = np.arange(24, dtype=np.float32).reshape(6, 4)
    old = create_group(tmp_path / "old.zarr")
    blosc = BloscCodec(cname="zstd", clevel=3, shuffle="shuffle")  # a layout check_chunks reads
    old.create_array("x", shape=data.shape, dtype="float32", chunks=(2, 4), compressors=blosc)
    old["x"][...] = data
    nested = tmp_path / "old.zarr" / "x" / "c"
    assert chunk_files(tmp_path / "old.zarr" / "x") == [nested / str(i) / "0" for i in range(3)]
    np.testing.assert_array_equal(read_array(open_store(tmp_path / "old.zarr"), "x"), data)
    # ...and the damaged-chunk check still finds their files
    (nested / "1" / "0").write_bytes((nested / "1" / "0").read_bytes()[:-3])
    with pytest.raises(StoreError, match=r"x/c/1/0: damaged chunk"):
        open_store(tmp_path / "old.zarr")


def test_fill_shards_writes_each_shard_once(tmp_path):
    group = create_group(tmp_path / "f.zarr")
    out = create_array(group, "y", (10,), "int64", dims=("sample",), chunk_size=4)
    calls = []

    def compute(sl):
        calls.append((sl.start, sl.stop))
        return {"y": np.arange(sl.start, sl.stop) * 2}

    fill_shards({"y": out}, compute, 10, 4)
    assert calls == [(0, 4), (4, 8), (8, 10)]
    np.testing.assert_array_equal(out[:], np.arange(10) * 2)
    assert shard_slices(10, 4) == [slice(0, 4), slice(4, 8), slice(8, 10)]


def test_open_store_errors_name_the_path(tmp_path):
    with pytest.raises(StoreError, match="missing.zarr"):
        open_store(tmp_path / "missing.zarr")
    write_array(create_group(tmp_path / "g.zarr"), "a", np.zeros(3), dims=("sample",), chunk_size=2)
    with pytest.raises(StoreError, match="missing array 'b'"):
        open_store(tmp_path / "g.zarr", {"b": 1})
    with pytest.raises(StoreError, match="expected 2 dims"):
        open_store(tmp_path / "g.zarr", {"a": 2})


def test_read_json_errors(tmp_path):
    with pytest.raises(StoreError, match="nope.json"):
        read_json(tmp_path / "nope.json")
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(StoreError, match="not valid JSON"):
        read_json(tmp_path / "bad.json")


def test_typed_accessors_check_arrays_and_attrs(tmp_path):
    group = create_group(tmp_path / "g.zarr", {"names": ["a", "b"], "mixed": ["a", 1]})
    arr = write_array(group, "x", np.arange(5.0), dims=("sample",), chunk_size=2)
    group.create_group("sub")
    assert require_array(group, "x").shape == (5,)
    got = read_array(group, "x")
    assert isinstance(got, np.ndarray) and np.array_equal(got, np.arange(5.0))
    assert store_dir(arr) == tmp_path / "g.zarr"
    with pytest.raises(StoreError, match=r"g\.zarr: missing array 'y'"):
        require_array(group, "y")
    with pytest.raises(StoreError, match=r"my-store/sub: expected an array, found a group"):
        read_array(group, "sub", "my-store")
    assert str_list_attr(group, "names") == ["a", "b"]
    assert str_list_attr(group, "absent", default=[]) == []
    with pytest.raises(StoreError, match="missing attribute 'absent'"):
        str_list_attr(group, "absent")
    with pytest.raises(StoreError, match="'mixed' must be a list of strings"):
        str_list_attr(group, "mixed")
    with pytest.raises(StoreError, match="not in a local directory store"):
        store_dir(zarr.create_array(zarr.storage.MemoryStore(), shape=(2,), dtype="f4"))


def test_write_csv_takes_frames_and_records_and_writes_atomically(tmp_path):
    import pandas as pd
    import pytest

    from advinterp.store import write_csv

    records = [{"epoch": 1, "acc": 0.5}, {"epoch": 2, "acc": 0.123456789}]
    write_csv(tmp_path / "h.csv", records)
    assert (tmp_path / "h.csv").read_text() == "epoch,acc\n1,0.5\n2,0.123456789\n"
    write_csv(tmp_path / "h.csv", pd.DataFrame(records), float_format="%.3f")
    assert (tmp_path / "h.csv").read_text() == "epoch,acc\n1,0.500\n2,0.123\n"
    with pytest.raises(TypeError):
        write_csv(tmp_path / "h.csv", 5)  # type: ignore[arg-type]
    assert (tmp_path / "h.csv").read_text().startswith("epoch,acc")  # the old file survives
    assert sorted(p.name for p in tmp_path.iterdir()) == ["h.csv"]
