"""Fuzzing the dataset readers: random damage to index files gives a DatasetError or a
valid dataset, never another exception and never a hang.

Each example damages one index file of a valid tiny layout (random bytes, random text,
truncation, a dropped / duplicated / inserted line, a token replaced by junk), runs the
full reader path (``open_source``: read, validate, check image files) and restores the
file. Bounded: 50 examples per reader with a per-example deadline.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from advinterp.config.dataset import DatasetConfig
from advinterp.data.sources import open_source
from advinterp.data.xlsa import read_xlsa
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


@st.composite
def damage(draw, original: bytes) -> bytes:
    """One random way of breaking a text file."""
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


@pytest.fixture(scope="module")
def layouts(tmp_path_factory) -> dict[str, Path]:
    roots = {}
    for name, make in (("cub", make_cub), ("awa2", make_awa2), ("lad", make_lad)):
        root = tmp_path_factory.mktemp(name)
        make(root)
        roots[name] = root
    return roots


def _check(root: Path, source: str, rel: str, data) -> None:
    path = root / rel
    original = path.read_bytes()
    try:
        path.write_bytes(data.draw(damage(original)))
        cfg = DatasetConfig(source=source, root=root, image_size=8, val_fraction=0.34)
        try:
            index, _ = open_source(cfg, seed=0)
        except DatasetError as err:
            assert str(err), "a DatasetError must say what is wrong"
        else:
            assert index.num_samples > 0  # the damage happened to leave a valid layout
    finally:
        path.write_bytes(original)


@pytest.mark.timeout(300)
@pytest.mark.parametrize("source", ["cub", "awa2", "lad"])
@FUZZ
@given(data=st.data())
def test_damaged_index_files_raise_dataset_error(layouts, source, data):
    rel = data.draw(st.sampled_from(INDEX_FILES[source]), label="file")
    _check(layouts[source], source, rel, data)


@pytest.mark.timeout(300)
@FUZZ
@given(data=st.data())
def test_damaged_mat_files_raise_dataset_error(tmp_path_factory, data):
    folder = tmp_path_factory.getbasetemp() / "xlsa_fuzz"
    res_path, att_path = folder / "res101.mat", folder / "att_splits.mat"
    if not res_path.exists():
        write_xlsa(folder, *xlsa_dicts())
    path = data.draw(st.sampled_from([res_path, att_path]), label="file")
    original = path.read_bytes()
    try:
        raw = bytearray(original)
        # Flip bytes in the header and the first data elements (shapes, types, sizes).
        for _ in range(data.draw(st.integers(1, 6))):
            pos = data.draw(st.integers(0, min(len(raw), 600) - 1))
            raw[pos] = data.draw(st.integers(0, 255))
        if data.draw(st.booleans()):
            raw = raw[: data.draw(st.integers(0, len(raw)))]
        path.write_bytes(bytes(raw))
        try:
            read_xlsa(res_path, att_path)
        except DatasetError as err:
            assert str(err)
    finally:
        path.write_bytes(original)
