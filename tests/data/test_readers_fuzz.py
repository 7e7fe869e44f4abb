"""Fuzzing the dataset readers: damage that breaks an index file gives a DatasetError,
edits that keep it valid read the same dataset, and random damage never gives another
exception nor a hang.

Three kinds of examples, each on one file of a valid tiny layout (restored afterwards)
through the full reader path (``open_source``: read, validate, check image files):

* broken: bytes that are not UTF-8, a NUL byte, an empty file, a line of junk, and for
  files with one line per id a dropped or repeated line. Every one must raise
  ``DatasetError`` naming a file of the layout; nothing raised is a failure.
* harmless: blank lines, CRLF line ends, a BOM, trailing whitespace, no final newline.
  These must read, and give exactly the dataset the pristine layout gives.
* random: bytes, text, truncation, a dropped / duplicated / inserted line, a token
  replaced by junk. Any of these may happen to leave a valid layout, so either outcome
  passes, but only as a ``DatasetError`` with a message or a dataset that validates.

The xlsa ``.mat`` reader gets the same three: a file cut inside its first variable, a
broken byte-order mark or random bytes must raise; edits of the free-text header must
read the same features; random byte flips give one or the other. Bounded: 50 examples
per test and reader, derandomised, with a per-example deadline.
"""

from __future__ import annotations

import contextlib
import dataclasses
import struct
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from advinterp.config.dataset import DatasetConfig
from advinterp.data.dataset import AttributeIndex
from advinterp.data.sources import open_source
from advinterp.data.xlsa import XlsaFeatures, read_xlsa
from advinterp.errors import DatasetError
from tests.data.layouts import make_awa2, make_cub, make_lad
from tests.data.test_xlsa import write_xlsa, xlsa_dicts

INDEX_FILES = {
    "cub": [
        "CUB_200_2011/images.txt",
        "CUB_200_2011/image_class_labels.txt",
        "CUB_200_2011/train_test_split.txt",
        "CUB_200_2011/classes.txt",
        "attributes.txt",
        "CUB_200_2011/attributes/class_attribute_labels_continuous.txt",
        "CUB_200_2011/attributes/image_attribute_labels.txt",
        "CUB_200_2011/bounding_boxes.txt",
        "CUB_200_2011/parts/parts.txt",
        "CUB_200_2011/parts/part_locs.txt",
    ],
    "awa2": ["classes.txt", "predicates.txt", "predicate-matrix-continuous.txt"],
    "lad": [
        f"LAD_annotations/{name}"
        for name in (
            "label_list.txt",
            "attribute_list.txt",
            "attributes_per_class.txt",
            "images.txt",
            "split_supervisedlearning.txt",
            "attributes.txt",
        )
    ],
}
# Files whose lines may be absent (optional per-image annotations; an image in neither
# split list is a test image) or repeated without making the layout invalid. Every other
# index file has exactly one line per id, class or attribute.
MAY_DROP = {
    "CUB_200_2011/attributes/image_attribute_labels.txt",
    "CUB_200_2011/parts/part_locs.txt",
    "LAD_annotations/split_supervisedlearning.txt",
    "LAD_annotations/attributes.txt",
}
MAY_REPEAT = {
    "CUB_200_2011/attributes/image_attribute_labels.txt",
    "LAD_annotations/split_supervisedlearning.txt",
    "LAD_annotations/attributes.txt",
}

FUZZ = settings(
    max_examples=50,
    deadline=timedelta(seconds=5),
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    derandomize=True,  # the same examples on every run: a CI failure reproduces locally
)

JUNK = st.sampled_from(
    ["", "x", "-1", "0", "1.5", "nan", "inf", "1e309", "99999999999999999999", ",", "[", "]",
     "\t", "::", "é", "\x00", "Label_Z_9", "Image_0", "3 3 3"]
) | st.text(max_size=12)  # fmt: skip
# Bytes that occur nowhere in UTF-8 text.
NOT_UTF8 = st.sampled_from([0xC0, 0xC1, *range(0xF5, 0x100)])
# One word where every format wants numbers, an id and a name, or comma-separated fields
# (letters only: no digits that could make an id, no colon that makes a split header).
JUNK_WORD = st.from_regex(r"[A-Za-z@#]{1,12}", fullmatch=True)


def _lines(original: bytes) -> list[str]:
    return original.decode("utf-8").splitlines(keepends=True)


def _nonblank(draw, lines: list[str]) -> int:
    return draw(st.sampled_from([i for i, ln in enumerate(lines) if ln.strip()]))


@st.composite
def damage(draw, original: bytes) -> bytes:
    """One random way of damaging a text file (which may leave it valid)."""
    text = original.decode("utf-8")
    lines = text.splitlines(keepends=True)
    kind = draw(
        st.sampled_from(["bytes", "text", "truncate", "drop", "duplicate", "insert", "token"])
    )
    if kind == "bytes":
        return draw(st.binary(max_size=300))
    if kind == "text":
        return draw(st.text(max_size=300)).encode("utf-8")
    if kind == "truncate":
        return original[: draw(st.integers(0, max(len(original) - 1, 0)))]
    k = draw(st.integers(0, max(len(lines) - 1, 0)))
    if kind == "drop":
        del lines[k : k + 1]
    elif kind == "duplicate":
        lines.insert(k, lines[k] if lines else "\n")
    elif kind == "insert":
        lines.insert(k, draw(st.lists(JUNK, max_size=6).map(" ".join)) + "\n")
    elif lines:
        tokens = lines[k].split(" ")
        j = draw(st.integers(0, len(tokens) - 1))
        tokens[j] = draw(JUNK)
        lines[k] = " ".join(tokens)
    return "".join(lines).encode("utf-8", errors="surrogatepass")


@st.composite
def broken(draw, original: bytes, rel: str) -> bytes:
    """One way of breaking index file ``rel`` that no reader may accept."""
    kinds = ["not_utf8", "nul", "empty", "junk_line"]
    kinds += [] if rel in MAY_DROP else ["drop"]
    kinds += [] if rel in MAY_REPEAT else ["repeat"]
    kind = draw(st.sampled_from(kinds), label="kind")
    if kind in ("not_utf8", "nul"):
        at = draw(st.integers(0, len(original)))
        byte = bytes([draw(NOT_UTF8)]) if kind == "not_utf8" else b"\x00"
        return original[:at] + byte + original[at:]
    if kind == "empty":
        return draw(st.sampled_from([b"", b"\n", b"  \n\t\n"]))
    lines = _lines(original)
    if kind == "junk_line":
        lines.insert(draw(st.integers(0, len(lines))), draw(JUNK_WORD) + "\n")
    else:
        k = _nonblank(draw, lines)
        line = lines[k] if lines[k].endswith("\n") else lines[k] + "\n"
        lines[k : k + 1] = [] if kind == "drop" else [line, line]
    return "".join(lines).encode("utf-8")


@st.composite
def harmless(draw, original: bytes) -> bytes:
    """Edits that leave an index file meaning the same: one or more of blank lines,
    trailing whitespace, no final newline, CRLF line ends, a BOM."""
    lines = _lines(original)
    for _ in range(draw(st.integers(0, 3), label="blank lines")):
        lines.insert(draw(st.integers(0, len(lines))), draw(st.sampled_from(["\n", " \n", "\t\n"])))
    if draw(st.booleans(), label="trailing whitespace"):
        k = _nonblank(draw, lines)
        lines[k] = lines[k].rstrip("\n") + draw(st.sampled_from([" ", "\t", "  \t"])) + "\n"
    text = "".join(lines)
    if draw(st.booleans(), label="no final newline"):
        text = text.rstrip("\n")
    if draw(st.booleans(), label="crlf"):
        text = text.replace("\n", "\r\n")
    return (b"\xef\xbb\xbf" if draw(st.booleans(), label="bom") else b"") + text.encode("utf-8")


@pytest.fixture(scope="module")
def layouts(tmp_path_factory) -> dict[str, Path]:
    roots = {}
    for name, make in (("cub", make_cub), ("awa2", make_awa2), ("lad", make_lad)):
        root = tmp_path_factory.mktemp(name)
        make(root)
        roots[name] = root
    return roots


def _open(root: Path, source: str) -> tuple[AttributeIndex, list[Path]]:
    cfg = DatasetConfig(source=source, root=root, image_size=8, val_fraction=0.34)
    index, images = open_source(cfg, seed=0)
    return index, list(images.paths)


@pytest.fixture(scope="module")
def pristine(layouts) -> dict[str, tuple[AttributeIndex, list[Path]]]:
    """What each undamaged layout reads as."""
    return {source: _open(root, source) for source, root in layouts.items()}


def assert_same(a, b, where: str = "index") -> None:
    """Dataclasses (the index, its part boxes) equal field by field, arrays exactly."""
    if dataclasses.is_dataclass(a):
        assert type(a) is type(b), where
        for f in dataclasses.fields(a):
            assert_same(getattr(a, f.name), getattr(b, f.name), f"{where}.{f.name}")
    elif isinstance(a, np.ndarray):
        assert isinstance(b, np.ndarray) and a.dtype == b.dtype, where
        np.testing.assert_array_equal(a, b, err_msg=where)
    else:
        assert a == b, where


@contextlib.contextmanager
def _damaged(root: Path, rel: str, data: bytes) -> Iterator[None]:
    """``root/rel`` holds ``data`` inside the block, its original bytes afterwards."""
    path = root / rel
    original = path.read_bytes()
    path.write_bytes(data)
    try:
        yield
    finally:
        path.write_bytes(original)


@pytest.mark.timeout(300)
@pytest.mark.parametrize("source", ["cub", "awa2", "lad"])
@FUZZ
@given(data=st.data())
def test_broken_index_files_raise_dataset_error(layouts, source, data):
    root = layouts[source]
    rel = data.draw(st.sampled_from(INDEX_FILES[source]), label="file")
    bad = data.draw(broken((root / rel).read_bytes(), rel), label="bytes")
    with _damaged(root, rel, bad), pytest.raises(DatasetError) as err:
        _open(root, source)
    assert str(root) in str(err.value), "the error must name the file (or the dataset)"


@pytest.mark.timeout(300)
@pytest.mark.parametrize("source", ["cub", "awa2", "lad"])
@FUZZ
@given(data=st.data())
def test_harmless_edits_read_the_same_dataset(layouts, pristine, source, data):
    root = layouts[source]
    rel = data.draw(st.sampled_from(INDEX_FILES[source]), label="file")
    edited = data.draw(harmless((root / rel).read_bytes()), label="bytes")
    with _damaged(root, rel, edited):
        index, paths = _open(root, source)
    expected_index, expected_paths = pristine[source]
    assert_same(index, expected_index)
    assert paths == expected_paths


@pytest.mark.timeout(300)
@pytest.mark.parametrize("source", ["cub", "awa2", "lad"])
@FUZZ
@given(data=st.data())
def test_random_damage_gives_dataset_error_or_a_valid_dataset(layouts, source, data):
    root = layouts[source]
    rel = data.draw(st.sampled_from(INDEX_FILES[source]), label="file")
    with _damaged(root, rel, data.draw(damage((root / rel).read_bytes()), label="bytes")):
        try:
            index, paths = _open(root, source)  # validated: labels, splits, attributes
        except DatasetError as err:
            assert str(err), "a DatasetError must say what is wrong"
            return
    # The damage happened to leave a valid layout (a blank line, a renamed class, ...).
    assert index.num_samples == len(paths) > 0
    assert all(p.is_file() for p in paths)


# -- xlsa .mat files -------------------------------------------------------------------

MAT_HEADER_TEXT = 116  # bytes 0..115 of a MAT v5 file: free descriptive text


@pytest.fixture(scope="module")
def mats(tmp_path_factory) -> tuple[Path, Path, XlsaFeatures]:
    """res101.mat, att_splits.mat and what they read as."""
    res_path, att_path = write_xlsa(tmp_path_factory.mktemp("xlsa_fuzz"), *xlsa_dicts())
    return res_path, att_path, read_xlsa(res_path, att_path)


def _first_variable_end(raw: bytes) -> int:
    """End offset of the first data element after the 128-byte header (tag + data)."""
    order = "<" if raw[126:128] == b"IM" else ">"
    return 136 + struct.unpack_from(order + "I", raw, 132)[0]


@pytest.mark.timeout(300)
@FUZZ
@given(data=st.data())
def test_broken_mat_files_raise_dataset_error(mats, data):
    res_path, att_path, _ = mats
    path = data.draw(st.sampled_from([res_path, att_path]), label="file")
    raw = path.read_bytes()
    kind = data.draw(st.sampled_from(["cut", "byte_order", "not_mat"]), label="kind")
    if kind == "cut":  # inside the header or the first (required) variable
        bad = raw[: data.draw(st.integers(0, _first_variable_end(raw) - 1))]
    elif kind == "byte_order":  # "IM"/"MI" at bytes 126-127 says the file is MAT v5
        other = st.integers(0, 255).filter(lambda b: b not in b"IM")
        bad = raw[:126] + bytes([data.draw(other), data.draw(other)]) + raw[128:]
    else:
        bad = data.draw(st.binary(max_size=600))
    with _damaged(path.parent, path.name, bad), pytest.raises(DatasetError) as err:
        read_xlsa(res_path, att_path)
    assert path.name in str(err.value)


@pytest.mark.timeout(300)
@FUZZ
@given(data=st.data())
def test_mat_header_text_edits_read_the_same_features(mats, data):
    res_path, att_path, expected = mats
    path = data.draw(st.sampled_from([res_path, att_path]), label="file")
    raw = bytearray(path.read_bytes())
    for _ in range(data.draw(st.integers(1, 8))):
        # Non-zero: a zero among the first 4 bytes marks a MAT v4 file.
        raw[data.draw(st.integers(0, MAT_HEADER_TEXT - 1))] = data.draw(st.integers(1, 255))
    with _damaged(path.parent, path.name, bytes(raw)):
        got = read_xlsa(res_path, att_path)
    for name, values in expected.arrays().items():
        np.testing.assert_array_equal(got.arrays()[name], values, err_msg=name)
    assert got.class_names == expected.class_names


@pytest.mark.timeout(300)
@FUZZ
@given(data=st.data())
def test_random_mat_damage_gives_dataset_error_or_valid_features(mats, data):
    res_path, att_path, _ = mats
    path = data.draw(st.sampled_from([res_path, att_path]), label="file")
    raw = bytearray(path.read_bytes())
    # Flip bytes in the header and the first data elements (shapes, types, sizes).
    for _ in range(data.draw(st.integers(1, 6))):
        pos = data.draw(st.integers(0, min(len(raw), 600) - 1))
        raw[pos] = data.draw(st.integers(0, 255))
    if data.draw(st.booleans()):
        raw = raw[: data.draw(st.integers(0, len(raw)))]
    with _damaged(path.parent, path.name, bytes(raw)):
        try:
            got = read_xlsa(res_path, att_path)
        except DatasetError as err:
            assert str(err)
            return
    # A flip that left the file readable (header text, a value) gives consistent arrays.
    n = len(got.labels)
    assert got.features.shape[0] == n > 0 and len(got.split) == n
    assert got.labels.min() >= 0 and got.labels.max() < len(got.class_attributes)
    assert np.isfinite(got.features).all() and np.isfinite(got.class_attributes).all()
