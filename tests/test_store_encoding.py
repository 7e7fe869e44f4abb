"""advinterp.store: float32 arrays stored relative to a reference, bitwise round trip.

The codec (``encode``/``decode``) on hand-computed words and on every kind of float32
bit pattern, then the store side: arrays written shard by shard (also as a worker
writes them, and resumed after a kill), read back through ``decoded``/``read_array``
with selections across shard boundaries, checked by ``open_store``.
"""

from __future__ import annotations

import os

import numpy as np
import pytest
import zarr

from advinterp.errors import StoreError
from advinterp.shards import ShardJob, ShardSpec, run_one_shard
from advinterp.store import (
    ESCAPED_WORD,
    MAX_LEVELS,
    DecodedArray,
    Relative,
    chunk_files,
    create_array,
    create_group,
    decode,
    decoded,
    encode,
    fill_shards,
    forget_references,
    has_escapes,
    open_store,
    read_array,
    require_array,
    resumable_output,
    write_array,
    write_shard,
)

DIMS = ("sample", "c", "y", "x")
ALPHA = np.float32(0.005)
EPS = float(4 * ALPHA)
# The IFGSM levels of one budget: k·α within the ball; 0, 1 and k·α, 1 - k·α for pixels
# clipped at 0 or 1 and stepped back.
LEVELS = Relative(
    "clean",
    tuple(float(np.float32(k) * ALPHA) for k in range(-4, 5)),
    (0.0, 1.0, *(float(c) for k in range(1, 5) for c in (k * ALPHA, np.float32(1) - k * ALPHA))),
)


def _bits(a: np.ndarray) -> np.ndarray:
    return np.asarray(a, np.float32).view(np.uint32)


def _assert_bitwise(got: np.ndarray, want: np.ndarray) -> None:
    assert got.dtype == np.float32 and got.shape == want.shape
    np.testing.assert_array_equal(_bits(got), _bits(want))


def _ifgsm_like(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Clean images and IFGSM-style perturbed ones: 4 signed steps of α, each added in
    float32 and projected onto the eps-ball and [0, 1] as the attack does."""
    rng = np.random.default_rng(seed)
    x = rng.random((n, 3, 8, 8), dtype=np.float32)
    x[:, 0, 0, :4] = [0.0, 1.0, 0.003, 0.998]  # at and near the clip bounds
    adv = x.copy()
    for _ in range(4):
        step = ALPHA * rng.choice(np.array([-1, 1], np.float32), x.shape)
        adv = np.clip(np.minimum(np.maximum(adv + step, x - EPS), x + EPS), 0, 1)
    return x, adv.astype(np.float32)


def _special(shape: tuple[int, ...], seed: int = 1) -> np.ndarray:
    """Arbitrary float32 bit patterns: random bits, ±0, ±inf, NaNs with payloads,
    subnormals, 0 and 1 exactly, the largest finite values."""
    rng = np.random.default_rng(seed)
    v = rng.integers(0, 1 << 32, size=shape, dtype=np.uint64).astype(np.uint32).view(np.float32)
    flat = v.reshape(-1)
    special = np.array(
        [0x00000000, 0x80000000, 0x7F800000, 0xFF800000, 0x7FC00000, 0x7FC01234, 0xFFC0BEEF,
         0x7F800001, 0x00000001, 0x807FFFFF, 0x00400000, 0x3F800000, 0x7F7FFFFF, 0xFF7FFFFF],
        dtype=np.uint32,
    ).view(np.float32)  # fmt: skip
    flat[: len(special)] = special
    return v


# -- the codec ---------------------------------------------------------------------------


def test_words_by_hand():
    spec = Relative("clean", (0.0, 0.25), (1.0,))
    x = np.array([0.5, 0.5, 0.5, 0.5, 0.5], np.float32)
    above = np.nextafter(np.float32(0.75), np.float32(1))  # one ULP above the prediction
    below = np.nextafter(np.float32(0.5), np.float32(0))
    v = np.array([0.5, 0.75, above, 1.0, below], np.float32)
    words, planes = encode(v, x, spec)
    # code | zigzag(residual) << 5: +1 ULP -> 2, -1 ULP -> 1; the constant 1.0 is code 2.
    np.testing.assert_array_equal(words, [0, 1, 1 | 2 << 5, 2, 0 | 1 << 5])
    assert planes is None and not has_escapes(words)
    _assert_bitwise(decode(words, x, spec), v)


def test_ifgsm_like_values_round_trip_with_no_escapes_and_compress():
    x, adv = _ifgsm_like(32)
    assert (adv == 0).any() and (adv == 1).any(), "the fixture clips pixels at 0 and 1"
    words, planes = encode(adv, x, LEVELS)
    assert planes is None and words.dtype == np.uint16
    _assert_bitwise(decode(words, x, LEVELS), adv)
    # Most pixels need no residual at all: the word is just the code.
    assert ((words >> 5) == 0).mean() > 0.5


@pytest.mark.parametrize(
    "spec",
    [Relative("clean"), LEVELS, Relative("clean", (0.0,), tuple(range(MAX_LEVELS - 1)))],
    ids=["delta", "ifgsm", "constants"],
)
def test_any_bit_pattern_round_trips(spec):
    x, adv = _ifgsm_like(4)
    values = _special(adv.shape)
    for reference in (x, _special(adv.shape, seed=2), values):
        words, planes = encode(values, reference, spec)
        _assert_bitwise(decode(words, reference, spec, planes), values)
    # Escaped elements are exactly those stored whole in the planes.
    words, planes = encode(values, x, spec)
    escaped = words >= ESCAPED_WORD
    assert escaped[np.isnan(values) | np.isinf(values)].all()
    assert planes is not None and not planes[:, ~escaped].any()


def test_a_large_array_decodes_in_parallel_parts_bitwise(monkeypatch):
    import advinterp.store as store

    # 3 threads, parts of at least 1000 elements: 3 parts of unequal lengths.
    monkeypatch.setattr(store, "_DECODE_THREADS", 3)
    monkeypatch.setattr(store, "_PART_MIN", 1000)
    x, adv = _ifgsm_like(700)
    adv[5::97, 1, 2, 3] = np.nan  # escapes in every part
    words, planes = encode(adv, x, LEVELS)
    _assert_bitwise(decode(words, x, LEVELS, planes), adv)


def test_decoding_escaped_words_needs_the_planes():
    x = np.zeros(3, np.float32)
    words, planes = encode(np.array([0, np.nan, 7e30], np.float32), x, LEVELS)
    assert has_escapes(words) and planes is not None
    with pytest.raises(ValueError, match="escape planes"):
        decode(words, x, LEVELS)


def test_encode_refuses_what_it_cannot_keep():
    x = np.zeros(3, np.float32)
    with pytest.raises(TypeError, match="float32"):
        encode(np.zeros(3), x, LEVELS)
    with pytest.raises(ValueError, match="shape"):
        encode(np.zeros(2, np.float32), x, LEVELS)
    with pytest.raises(ValueError, match="levels"):
        Relative("clean", tuple(range(MAX_LEVELS)), (1.0,))
    with pytest.raises(ValueError, match="finite"):
        Relative("clean", (np.nan,))


def test_relative_attrs_round_trip():
    assert Relative.from_attrs(LEVELS.to_attrs()) == LEVELS
    with pytest.raises(ValueError, match="unknown encoding"):
        Relative.from_attrs({**LEVELS.to_attrs(), "name": "other/1"})


# -- the store side --------------------------------------------------------------------------


def _store(tmp_path, n=10, chunk=4, values=None):
    """A store with ``clean`` and ``m/e/images`` relative to it, written in one go."""
    x, adv = _ifgsm_like(n)
    if values is not None:
        adv = values
    group = create_group(tmp_path / "s.zarr")
    write_array(group, "clean", x, dims=DIMS, chunk_size=chunk)
    write_array(
        group.require_group("m/e"), "images", adv, dims=DIMS, chunk_size=chunk, relative=LEVELS
    )
    return tmp_path / "s.zarr", x, adv


def test_store_round_trip_and_selections_across_shards(tmp_path):
    path, _, adv = _store(tmp_path, values=_special((10, 3, 8, 8)))
    store = open_store(path, {"clean": 4, "m/e/images": 4})
    _assert_bitwise(read_array(store, "m/e/images"), adv)
    arr = decoded(store, "m/e/images")
    assert isinstance(arr, DecodedArray)
    assert arr.shape == adv.shape and arr.ndim == 4 and len(arr) == 10
    assert arr.attrs["dims"] == list(DIMS)
    for sel in [
        slice(3, 9),  # across the shard boundaries at 4 and 8
        (slice(2, 7), 1),
        (slice(None), slice(None), 3, slice(1, 6)),
        7,
        (9, Ellipsis, 2),
        np.array([0, 4, 5, 9]),
        (np.array([1, 8]), slice(0, 2)),
        Ellipsis,
    ]:
        _assert_bitwise(arr[sel], adv[sel])
    _assert_bitwise(arr.get_orthogonal_selection((np.array([2, 6]),)), adv[[2, 6]])
    _assert_bitwise(np.asarray(arr), adv)
    with pytest.raises(IndexError, match="one axis"):
        arr[np.array([0, 1]), np.array([0, 1])]


def test_store_layout_words_one_chunk_per_shard_escapes_only_where_needed(tmp_path):
    path, _, _ = _store(tmp_path)
    stored = zarr.open_array(str(path / "m/e/images"), mode="r")
    assert stored.dtype == np.uint16 and stored.shape == (10, 3, 3, 8, 8)
    assert stored.attrs["encoding"] == LEVELS.to_attrs()
    files = [p.name for p in chunk_files(path / "m/e/images")]
    assert files == ["c.0.0.0.0.0", "c.1.0.0.0.0", "c.2.0.0.0.0"], "one words chunk per shard"


def test_plain_readers_refuse_the_stored_words(tmp_path):
    path, _, _ = _store(tmp_path)
    store = open_store(path)
    with pytest.raises(StoreError, match="stored relative to 'clean'.*decoded"):
        require_array(store, "m/e/images")
    assert isinstance(decoded(store, "clean"), zarr.Array), "plain arrays are returned as they are"
    with pytest.raises(StoreError, match="expected 5 dims, found 4"):
        open_store(path, {"m/e/images": 5})


def test_open_store_finds_a_damaged_encoded_chunk(tmp_path):
    path, _, _ = _store(tmp_path)
    chunk = path / "m/e/images/c.1.0.0.0.0"
    with open(chunk, "r+b") as f:
        f.truncate(os.path.getsize(chunk) - 3)
    with pytest.raises(StoreError, match=r"m/e/images/c\.1\.0\.0\.0\.0: damaged chunk"):
        open_store(path)


def test_create_checks_reference_and_values(tmp_path):
    group = create_group(tmp_path / "s.zarr")
    with pytest.raises(StoreError, match="reference array 'clean' is missing"):
        create_array(group, "a", (4, 2), "float32", dims=("s", "v"), chunk_size=2, relative=LEVELS)
    write_array(group, "clean", np.zeros((4, 3), np.float32), dims=("s", "v"), chunk_size=2)
    with pytest.raises(StoreError, match="not float32 \\(4, 2\\)"):
        create_array(group, "a", (4, 2), "float32", dims=("s", "v"), chunk_size=2, relative=LEVELS)
    with pytest.raises(ValueError, match="only float32"):
        create_array(group, "a", (4, 3), "float64", dims=("s", "v"), chunk_size=2, relative=LEVELS)
    arr = create_array(
        group, "a", (4, 3), "float32", dims=("s", "v"), chunk_size=2, relative=LEVELS
    )
    with pytest.raises(StoreError, match="float32 values needed"):
        write_shard({"a": arr}, {"a": np.zeros((2, 3))}, slice(0, 2))
    # Reopening (a resumed run) with another encoding or chunking is a layout error.
    for kw in ({"relative": Relative("clean")}, {"relative": LEVELS, "chunk_size": 4}):
        kw = {"chunk_size": 2, **kw}
        with pytest.raises(StoreError, match="different layout"):
            create_array(group, "a", (4, 3), "float32", dims=("s", "v"), **kw)
    with pytest.raises(StoreError, match="different layout"):
        create_array(group, "a", (4, 3), "float32", dims=("s", "v"), chunk_size=2)


def test_shard_by_shard_as_a_worker_writes_it(tmp_path):
    """run_one_shard reopens the output by path and encodes there (a Dask worker)."""
    x, adv = _ifgsm_like(10)
    group = create_group(tmp_path / "s.zarr")
    write_array(group, "clean", x, dims=DIMS, chunk_size=4)
    arr = create_array(
        group, "images", adv.shape, "float32", dims=DIMS, chunk_size=4, relative=LEVELS
    )
    job = ShardJob.of(_adv_setup, str(tmp_path / "adv.npy"))
    np.save(tmp_path / "adv.npy", adv)
    spec = ShardSpec(job, (("images", str(tmp_path / "s.zarr"), arr.path),), 10, 4, None, 1)
    for k in (2, 0, 1):  # any order, each shard once
        run_one_shard(spec, k)
    _assert_bitwise(read_array(open_store(tmp_path / "s.zarr"), "images"), adv)


def _adv_setup(path: str):
    """Shard setup of the worker test: slices of a saved array."""
    data = np.load(path)
    return lambda sl: {"images": data[sl]}


class KilledError(Exception):
    """Stands in for a kill in the middle of the stage."""


def test_resume_keeps_the_encoded_shards_already_written(tmp_path):
    x, adv = _ifgsm_like(10)
    out = tmp_path / "out.zarr"
    calls: list[int] = []

    def body(part, stop_after=None):
        group = part.group()
        fill_shards(
            {"clean": create_array(group, "clean", x.shape, "float32", dims=DIMS, chunk_size=4)},
            lambda sl: {"clean": x[sl]},
            10,
            4,
            markers=part.markers("clean"),
        )
        images = create_array(
            group, "images", x.shape, "float32", dims=DIMS, chunk_size=4, relative=LEVELS
        )

        def compute(sl):
            if stop_after is not None and len(calls) == stop_after:
                raise KilledError
            calls.append(sl.start)
            return {"images": adv[sl]}

        fill_shards({"images": images}, compute, 10, 4, markers=part.markers("images"))

    with pytest.raises(KilledError), resumable_output(out, "fp") as part:
        body(part, stop_after=2)
    assert calls == [0, 4]
    with resumable_output(out, "fp") as part:
        assert part.resumed
        body(part)
    assert calls == [0, 4, 8], "the resumed run computes only the missing shard"
    _assert_bitwise(read_array(open_store(out), "images"), adv)


def test_cached_reference_follows_a_rewrite(tmp_path):
    path, _, adv = _store(tmp_path)
    store = open_store(path)
    _assert_bitwise(decoded(store, "m/e/images")[2:6], adv[2:6])  # caches the reference
    # Rewrite the store in place: new clean images, the same values relative to them.
    x2, adv2 = _ifgsm_like(10, seed=5)
    group = zarr.open_group(str(path), mode="r+")
    group["clean"][...] = x2
    write_shard({"i": group["m/e/images"]}, {"i": adv2}, slice(0, 10))
    _assert_bitwise(read_array(open_store(path), "m/e/images"), adv2)
    forget_references()
    _assert_bitwise(read_array(open_store(path), "m/e/images"), adv2)
