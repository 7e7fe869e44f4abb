"""xlsa17 feature reader on tiny res101.mat / att_splits.mat files in the published format."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scipy.io

from advinterp.data.dataset import TEST, TRAIN, VAL
from advinterp.data.xlsa import read_xlsa
from advinterp.errors import DatasetError

N, D, C, A = 24, 5, 3, 4


def _cells(strings: list[str]) -> np.ndarray:
    out = np.empty((len(strings), 1), dtype=object)
    for i, s in enumerate(strings):
        out[i, 0] = s
    return out


def xlsa_dicts() -> tuple[dict, dict]:
    """The two files' contents, shaped as xlsa17 stores them (1-based, column vectors)."""
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(1, C + 1), N // C)  # 1-based
    att = rng.uniform(0, 1, (A, C))
    att /= np.linalg.norm(att, axis=0, keepdims=True)
    rows = np.arange(1, N + 1)
    unseen = rows[labels == 3]  # class 3 is unseen
    seen = rows[labels != 3]
    test_seen = seen[::4]
    trainval = np.setdiff1d(seen, test_seen)
    res = {
        "features": rng.normal(size=(D, N)),
        "labels": labels.reshape(-1, 1).astype(np.float64),
        "image_files": _cells([f"/BS/xlsa/CUB/images/{i:03d}.jpg" for i in range(N)]),
    }
    splits = {
        "att": att,
        "original_att": att * 100,
        "trainval_loc": trainval.reshape(-1, 1),
        "test_seen_loc": test_seen.reshape(-1, 1),
        "test_unseen_loc": unseen.reshape(-1, 1),
        "train_loc": trainval[::2].reshape(-1, 1),
        "val_loc": trainval[1::2].reshape(-1, 1),
        "allclasses_names": _cells(["001.Black_footed_Albatross", "002.Laysan", "003.Sooty"]),
    }
    return res, splits


def write_xlsa(folder: Path, res: dict, splits: dict) -> tuple[Path, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    scipy.io.savemat(folder / "res101.mat", res)
    scipy.io.savemat(folder / "att_splits.mat", splits)
    return folder / "res101.mat", folder / "att_splits.mat"


@pytest.fixture
def files(tmp_path: Path):
    res, splits = xlsa_dicts()
    return (*write_xlsa(tmp_path / "CUB", res, splits), res, splits)


def test_reads_features_labels_attributes_and_names(files):
    res_path, att_path, res, splits = files
    x = read_xlsa(res_path, att_path)
    assert x.features.shape == (N, D) and x.features.dtype == np.float32
    np.testing.assert_allclose(x.features, res["features"].T, rtol=1e-6)
    np.testing.assert_array_equal(x.labels, res["labels"].ravel() - 1)
    assert x.labels.dtype == np.int64
    np.testing.assert_allclose(x.class_attributes, splits["att"].T, rtol=1e-6)
    np.testing.assert_allclose(x.original_attributes, splits["original_att"].T, rtol=1e-5)
    assert x.class_names == ["001.Black_footed_Albatross", "002.Laysan", "003.Sooty"]
    assert x.image_files[3] == "/BS/xlsa/CUB/images/003.jpg"
    np.testing.assert_array_equal(
        x.locations["test_unseen_loc"], splits["test_unseen_loc"].ravel() - 1
    )
    assert set(x.arrays()) == {"features", "labels", "split", "class_attributes"}


def test_stratified_split_puts_every_class_in_train_and_test(files):
    res_path, att_path, *_ = files
    x = read_xlsa(res_path, att_path, split="stratified", val_fraction=0.25, test_fraction=0.25)
    for c in range(C):
        s = x.split[x.labels == c]
        assert (s == TRAIN).sum() == 4 and (s == VAL).sum() == 2 and (s == TEST).sum() == 2
    y = read_xlsa(res_path, att_path, split="stratified", val_fraction=0.25, test_fraction=0.25)
    np.testing.assert_array_equal(x.split, y.split)


def test_gzsl_split_follows_the_proposed_locations(files):
    res_path, att_path, _, splits = files
    x = read_xlsa(res_path, att_path, split="gzsl", val_fraction=0.2, seed=3)
    trainval = splits["trainval_loc"].ravel() - 1
    test = np.concatenate([splits["test_seen_loc"].ravel(), splits["test_unseen_loc"].ravel()]) - 1
    assert np.all(x.split[test] == TEST)
    assert np.all(np.isin(x.split[trainval], (TRAIN, VAL)))
    assert (x.split == VAL).sum() == 2 * round(0.2 * 6)  # per seen class: 6 trainval rows
    assert not np.any(x.split[x.labels == 2] != TEST)  # the unseen class is test only


def _broken(tmp_path: Path, which: str, key: str, value) -> tuple[Path, Path]:
    res, splits = xlsa_dicts()
    target = res if which == "res" else splits
    if value is None:
        del target[key]
    else:
        target[key] = value
    return write_xlsa(tmp_path / "broken", res, splits)


@pytest.mark.parametrize(
    ("which", "key", "value", "split", "match"),
    [
        ("res", "features", None, "stratified", r"res101\.mat: missing key 'features'"),
        ("res", "labels", None, "stratified", r"res101\.mat: missing key 'labels'"),
        ("splits", "att", None, "stratified", r"att_splits\.mat: missing key 'att'"),
        ("res", "features", np.zeros((D, N - 1)), "stratified", r"res101\.mat: 'features' has shape \(5, 23\)"),
        ("res", "features", np.full((D, N), np.nan), "stratified", r"res101\.mat: 'features' contains NaN"),
        ("res", "labels", np.zeros((N, 1)), "stratified", r"res101\.mat: 'labels' must lie in \[1, 3\]"),
        ("res", "labels", np.full((N, 1), 4.0), "stratified", r"res101\.mat: 'labels' must lie in \[1, 3\]"),
        ("res", "labels", np.full((N, 1), 1.5), "stratified", r"res101\.mat: 'labels' must hold integers"),
        ("res", "image_files", _cells(["a.jpg"]), "stratified", r"res101\.mat: 'image_files' lists 1 files for 24"),
        ("splits", "att", np.full((A, C), np.inf), "stratified", r"att_splits\.mat: 'att' contains NaN or inf"),
        ("splits", "allclasses_names", _cells(["a", "b"]), "stratified", r"att_splits\.mat: 'allclasses_names' lists 2 classes but 'att' has 3"),
        ("splits", "original_att", np.zeros((A + 1, C)), "stratified", r"att_splits\.mat: 'original_att' must be a finite matrix"),
        ("splits", "trainval_loc", np.array([[0]]), "stratified", r"att_splits\.mat: 'trainval_loc' must lie in \[1, 24\]"),
        ("splits", "trainval_loc", np.array([[1], [1]]), "stratified", r"att_splits\.mat: 'trainval_loc' lists a row more than once"),
        ("splits", "test_seen_loc", None, "gzsl", r"att_splits\.mat: missing key 'test_seen_loc'"),
        ("splits", "test_seen_loc", np.array([[2]]), "gzsl", r"att_splits\.mat: 'test_seen_loc' overlaps"),
        ("splits", "test_unseen_loc", np.array([[17]]), "gzsl", r"att_splits\.mat: \d+ feature rows are in none of"),
        ("splits", "att", np.array(["text"]), "stratified", r"att_splits\.mat: 'att' must be numeric"),
    ],
)  # fmt: skip
def test_malformed_files(tmp_path, which, key, value, split, match):
    res_path, att_path = _broken(tmp_path, which, key, value)
    with pytest.raises(DatasetError, match=match):
        read_xlsa(res_path, att_path, split=split)


def test_missing_corrupt_and_hdf5_files(files, tmp_path):
    res_path, att_path, *_ = files
    with pytest.raises(DatasetError, match=r"nope\.mat: missing \.mat file"):
        read_xlsa(tmp_path / "nope.mat", att_path)
    junk = tmp_path / "junk.mat"
    junk.write_bytes(b"\x00garbage" * 40)
    with pytest.raises(DatasetError, match=r"junk\.mat: not a readable \.mat file"):
        read_xlsa(junk, att_path)
    truncated = tmp_path / "truncated.mat"
    truncated.write_bytes(res_path.read_bytes()[:300])
    with pytest.raises(DatasetError, match=r"truncated\.mat"):
        read_xlsa(truncated, att_path)
    v73 = tmp_path / "v73.mat"
    v73.write_bytes(
        b"MATLAB 7.3 MAT-file".ljust(116, b" ") + b"\x00" * 8 + b"\x00\x02IM" + b"\x00" * 64
    )
    with pytest.raises(
        DatasetError, match=r"v73\.mat: MATLAB v7\.3 \(HDF5\) files are not supported"
    ):
        read_xlsa(v73, att_path)


def test_unknown_split_scheme(files):
    res_path, att_path, *_ = files
    with pytest.raises(DatasetError, match="unknown xlsa split scheme"):
        read_xlsa(res_path, att_path, split="zsl")  # type: ignore[arg-type]
