"""Published ResNet-101 features in the xlsa17 format (Xian et al., "Zero-shot learning —
the good, the bad and the ugly", 2017/2018), so SJE and the attribute-distance analysis
can run on CUB / AwA2 / SUN features that zero-shot researchers already have, without
images or a trained classifier.

Files (MATLAB v5 ``.mat``, read with :func:`scipy.io.loadmat`; nothing is downloaded):

=================  =====================  ==============================================
file               key                    content
=================  =====================  ==============================================
``res101.mat``     ``features``           (2048, N) pooled ResNet-101 features
                   ``labels``             (N, 1) class of each image, 1-based
                   ``image_files``        (N, 1) cell of image paths (optional here)
``att_splits.mat`` ``att``                (A, C) class attributes (xlsa17 stores each
                                          class l2-normalised)
                   ``original_att``       (A, C) the dataset's raw values (optional)
                   ``trainval_loc``,      1-based row numbers into ``res101.mat``
                   ``test_seen_loc``,     (the "proposed split"); ``train_loc`` and
                   ``test_unseen_loc``,   ``val_loc`` split trainval for model selection
                   ``train_loc``,
                   ``val_loc``
                   ``allclasses_names``   (C, 1) cell of class names (optional)
=================  =====================  ==============================================

What comes out matches what the pipeline's ``features`` stage and dataset store hold:
features (N, D) float32, 0-based labels, split codes (0 train / 1 val / 2 test), the
(C, A) class-attribute matrix and class names. Two ways to split:

* ``"stratified"`` (default): a per-class random split of all images with
  ``val_fraction`` / ``test_fraction`` (seeded) — the standard setting Gulshad et al.
  analyse, where every class is seen in training;
* ``"gzsl"``: Xian et al.'s proposed split — ``trainval_loc`` is train (validation
  carved out of it per class), ``test_seen_loc`` and ``test_unseen_loc`` are test.

The 0-based ``*_loc`` index sets are returned too, for zero-shot protocols.
"""

from __future__ import annotations

import io
import math
import struct
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import scipy.io

from advinterp.data.dataset import TEST, TRAIN, carve_validation, stratified_split
from advinterp.errors import DatasetError

LOCATIONS = ("trainval_loc", "test_seen_loc", "test_unseen_loc", "train_loc", "val_loc")
SplitScheme = Literal["stratified", "gzsl"]


@dataclass(frozen=True)
class XlsaFeatures:
    """Features, labels and class attributes of one xlsa17 dataset.

    Shape:
        features: (N, D) float32.
        labels: (N,) int64 in [0, C).
        split: (N,) int8 in {0 train, 1 val, 2 test}.
        class_attributes: (C, A) float32, ``att`` transposed (as stored: l2-normalised
            per class in the published files).
        original_attributes: (C, A) float32 ``original_att`` transposed, or None.
        locations: name -> (n,) int64 0-based rows, for each ``*_loc`` present.
    """

    features: np.ndarray
    labels: np.ndarray
    split: np.ndarray
    class_attributes: np.ndarray
    class_names: list[str]
    image_files: list[str] = field(default_factory=list)
    original_attributes: np.ndarray | None = None
    locations: dict[str, np.ndarray] = field(default_factory=dict)

    def arrays(self) -> dict[str, np.ndarray]:
        """The arrays the ``features`` stage and the dataset store provide, by their names."""
        return {
            "features": self.features,
            "labels": self.labels,
            "split": self.split,
            "class_attributes": self.class_attributes,
        }


def load_mat(path: Path | str) -> dict[str, Any]:
    """A MATLAB v5 file as a dict, or a :class:`DatasetError` naming it.

    The file's element structure is checked first (:func:`check_mat5`): scipy's reader
    indexes C tables with the type codes it reads, and a corrupt code crashes the whole
    process (segfault) instead of raising.
    """
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"{path}: missing .mat file")
    try:
        data = path.read_bytes()
    except OSError as err:
        raise DatasetError(f"{path}: cannot read ({err.strerror or err})") from None
    check_mat5(data, path)
    try:
        return scipy.io.loadmat(io.BytesIO(data))
    except NotImplementedError:
        raise DatasetError(
            f"{path}: MATLAB v7.3 (HDF5) files are not supported; re-save it with save(..., '-v7')"
        ) from None
    except Exception as err:  # loadmat raises many unrelated types for corrupt files
        raise DatasetError(
            f"{path}: not a readable .mat file ({type(err).__name__}: {err})"
        ) from None


# MAT v5 data types holding numbers or text, with their item sizes (miMATRIX=14 and
# miCOMPRESSED=15 are containers), and the array classes xlsa17 files use.
_MI_ITEMSIZE = {1: 1, 2: 1, 3: 2, 4: 2, 5: 4, 6: 4, 7: 4, 9: 8, 12: 8, 13: 8, 16: 1, 17: 2, 18: 4}
_MI_INT8, _MI_INT32, _MI_UINT32, _MI_MATRIX, _MI_COMPRESSED, _MI_UTF8 = 1, 5, 6, 14, 15, 16
_MX_CELL = 1
_MX_CLASSES = frozenset({_MX_CELL, 4, *range(6, 16)})  # cell, char, numeric
_MX_COMPLEX = 0x0800
_MAX_DEPTH = 32
_MAX_INFLATED = 8 << 30


def check_mat5(data: bytes, path: Path) -> None:
    """Check a MAT v5 file's element structure before scipy reads it.

    Hand-written because no maintained library validates MAT files, and
    :func:`scipy.io.loadmat` (1.17) segfaults instead of raising on corrupt type codes,
    flags or element sizes (its C reader trusts them). Every variable must be a cell,
    char or real numeric array whose flags, dimensions, name and data elements are
    well-formed and agree in size. Files that are not v5 (v4, v7.3/HDF5) pass through to
    loadmat's own errors.

    Raises:
        DatasetError: naming the file and the byte offset of the corrupt element.
    """
    if len(data) < 128 or data[126:128] not in (b"IM", b"MI"):
        return
    order = "<" if data[126:128] == b"IM" else ">"
    major = data[125] if order == "<" else data[124]
    if major != 1:
        return
    _variables(memoryview(data), 128, len(data), order, path, depth=0)


def _elements(
    buf: memoryview, pos: int, end: int, order: str, path: Path
) -> list[tuple[int, int, int, int]]:
    """The elements in ``buf[pos:end]`` as (type, data start, data size, tag offset)."""
    out = []
    while pos < end:
        if pos + 8 > end:
            raise DatasetError(f"{path}: truncated MAT element at byte {pos}")
        first, second = struct.unpack_from(order + "II", buf, pos)
        if first >> 16:  # small data element: type and size share the first word
            mdtype, size, start, nxt = first & 0xFFFF, first >> 16, pos + 4, pos + 8
            if size > 4:
                raise DatasetError(f"{path}: corrupt MAT element at byte {pos}")
        else:
            mdtype, size, start = first, second, pos + 8
            if start + size > end:
                raise DatasetError(
                    f"{path}: truncated MAT element at byte {pos} ({size} bytes declared)"
                )
            nxt = start + (size if mdtype == _MI_COMPRESSED else (size + 7) // 8 * 8)
        out.append((mdtype, start, size, pos))
        pos = min(nxt, end)
    return out


def _variables(buf: memoryview, pos: int, end: int, order: str, path: Path, depth: int) -> None:
    if depth > _MAX_DEPTH:
        raise DatasetError(f"{path}: MAT data nested deeper than {_MAX_DEPTH} levels")
    for mdtype, start, size, at in _elements(buf, pos, end, order, path):
        if mdtype == _MI_COMPRESSED:
            try:
                inner = zlib.decompressobj().decompress(
                    bytes(buf[start : start + size]), _MAX_INFLATED
                )
            except zlib.error as err:
                raise DatasetError(
                    f"{path}: corrupt compressed MAT variable at byte {at} ({err})"
                ) from None
            _variables(memoryview(inner), 0, len(inner), order, path, depth + 1)
        elif mdtype == _MI_MATRIX:
            _array(buf, start, start + size, order, path, depth + 1)
        else:
            raise DatasetError(f"{path}: corrupt MAT variable at byte {at} (type code {mdtype})")


def _array(buf: memoryview, start: int, end: int, order: str, path: Path, depth: int) -> None:
    """One miMATRIX: flags, dimensions, name, then its data (or its cells)."""
    if start == end:
        return  # an empty array
    if depth > _MAX_DEPTH:
        raise DatasetError(f"{path}: MAT data nested deeper than {_MAX_DEPTH} levels")
    where = f"{path}: corrupt MAT array at byte {start - 8}"
    parts = _elements(buf, start, end, order, path)
    if len(parts) < 3:
        raise DatasetError(f"{where} (missing flags, dimensions or name)")
    (t_flags, s_flags, n_flags, _), (t_dims, s_dims, n_dims, _), (t_name, *_) = parts[:3]
    if t_flags != _MI_UINT32 or n_flags != 8:
        raise DatasetError(f"{where} (array flags)")
    flags = struct.unpack_from(order + "I", buf, s_flags)[0]
    mx_class = flags & 0xFF
    if mx_class not in _MX_CLASSES:
        raise DatasetError(f"{where} (unsupported class code {mx_class})")
    if flags & _MX_COMPLEX:
        raise DatasetError(f"{where} (complex arrays are not supported)")
    if t_dims != _MI_INT32 or n_dims < 8 or n_dims % 4:
        raise DatasetError(f"{where} (dimensions)")
    dims = struct.unpack_from(order + f"{n_dims // 4}i", buf, s_dims)
    if min(dims) < 0:
        raise DatasetError(f"{where} (negative dimension)")
    count = math.prod(dims)
    if t_name != _MI_INT8:
        raise DatasetError(f"{where} (name)")
    data = parts[3:]
    if mx_class == _MX_CELL:
        if len(data) != count or any(t != _MI_MATRIX for t, *_ in data):
            raise DatasetError(f"{where} (cell holds {len(data)} elements for {count} cells)")
        for _, s, n, _ in data:
            _array(buf, s, s + n, order, path, depth + 1)
        return
    if len(data) != 1 or data[0][0] not in _MI_ITEMSIZE:
        raise DatasetError(f"{where} (data element)")
    mdtype, _, size, _ = data[0]
    if mdtype != _MI_UTF8 and size != count * _MI_ITEMSIZE[mdtype]:
        raise DatasetError(f"{where} ({size} data bytes for {count} elements)")


def read_xlsa(
    res101: Path | str,
    att_splits: Path | str,
    *,
    split: SplitScheme = "stratified",
    val_fraction: float = 0.1,
    test_fraction: float = 0.3,
    seed: int = 0,
) -> XlsaFeatures:
    """Read ``res101.mat`` and ``att_splits.mat`` (see the module docstring).

    Raises:
        DatasetError: a missing or unreadable file, a missing key, or arrays whose
            shapes, values or index sets do not agree (the message names file and key).
    """
    res101, att_splits = Path(res101), Path(att_splits)
    if split not in ("stratified", "gzsl"):
        raise DatasetError(f"unknown xlsa split scheme {split!r} (stratified | gzsl)")
    res = load_mat(res101)
    att = load_mat(att_splits)

    raw_labels = _numeric(res, "labels", res101)
    N = raw_labels.size
    if N == 0:
        raise DatasetError(f"{res101}: 'labels' is empty")
    feats = _numeric(res, "features", res101)
    if feats.ndim != 2:
        raise DatasetError(f"{res101}: 'features' must be 2-D (D, N), found shape {feats.shape}")
    if feats.shape[1] == N:
        feats = feats.T
    elif feats.shape[0] != N:
        raise DatasetError(
            f"{res101}: 'features' has shape {feats.shape}, which does not match {N} labels"
        )
    if not np.all(np.isfinite(feats)):
        raise DatasetError(f"{res101}: 'features' contains NaN or inf")

    class_att = _numeric(att, "att", att_splits)
    if class_att.ndim != 2 or class_att.size == 0:
        raise DatasetError(
            f"{att_splits}: 'att' must be a 2-D (A, C) matrix, found {class_att.shape}"
        )
    if not np.all(np.isfinite(class_att)):
        raise DatasetError(f"{att_splits}: 'att' contains NaN or inf")
    C = class_att.shape[1]
    labels = _indices(raw_labels, res101, "labels", C)

    names = _strings(att, "allclasses_names", att_splits)
    if names is None:
        names = [f"class_{c:03d}" for c in range(C)]
    elif len(names) != C:
        raise DatasetError(
            f"{att_splits}: 'allclasses_names' lists {len(names)} classes but 'att' has {C} columns"
        )
    files = _strings(res, "image_files", res101) or []
    if files and len(files) != N:
        raise DatasetError(f"{res101}: 'image_files' lists {len(files)} files for {N} labels")

    original = None
    if "original_att" in att:
        original = _numeric(att, "original_att", att_splits)
        if original.shape != class_att.shape or not np.all(np.isfinite(original)):
            raise DatasetError(
                f"{att_splits}: 'original_att' must be a finite matrix shaped like 'att' "
                f"{class_att.shape}, found {original.shape}"
            )
        original = original.T.astype(np.float32)

    locations = {
        key: _indices(_numeric(att, key, att_splits), att_splits, key, N)
        for key in LOCATIONS
        if key in att
    }
    for key, rows in locations.items():
        if len(np.unique(rows)) != len(rows):
            raise DatasetError(f"{att_splits}: '{key}' lists a row more than once")

    if split == "stratified":
        codes = stratified_split(labels, val_fraction, test_fraction, seed)
    else:
        codes = _gzsl_split(locations, labels, N, att_splits, val_fraction, seed)
    for code, name in ((TRAIN, "train"), (TEST, "test")):
        if not np.any(codes == code):
            raise DatasetError(f"{att_splits}: the {name} split is empty")

    return XlsaFeatures(
        features=np.ascontiguousarray(feats, dtype=np.float32),
        labels=labels,
        split=codes,
        class_attributes=np.ascontiguousarray(class_att.T, dtype=np.float32),
        class_names=names,
        image_files=files,
        original_attributes=original,
        locations=locations,
    )


def _gzsl_split(
    locations: dict[str, np.ndarray],
    labels: np.ndarray,
    N: int,
    path: Path,
    val_fraction: float,
    seed: int,
) -> np.ndarray:
    for key in ("trainval_loc", "test_seen_loc", "test_unseen_loc"):
        if key not in locations:
            raise DatasetError(f"{path}: missing key '{key}' (needed for split 'gzsl')")
    codes = np.full(N, -1, dtype=np.int8)
    for key, code in (("trainval_loc", TRAIN), ("test_seen_loc", TEST), ("test_unseen_loc", TEST)):
        rows = locations[key]
        if np.any(codes[rows] != -1):
            raise DatasetError(f"{path}: '{key}' overlaps an earlier location set")
        codes[rows] = code
    if np.any(codes == -1):
        missing = int((codes == -1).sum())
        raise DatasetError(
            f"{path}: {missing} feature rows are in none of trainval_loc, test_seen_loc, "
            "test_unseen_loc"
        )
    return carve_validation(labels, codes, val_fraction, seed)


def _numeric(mat: dict[str, Any], key: str, path: Path) -> np.ndarray:
    if key not in mat:
        raise DatasetError(f"{path}: missing key '{key}'")
    value = np.asarray(mat[key])
    if value.dtype.kind not in "biuf":
        raise DatasetError(f"{path}: '{key}' must be numeric, found {value.dtype}")
    return value.astype(np.float64)


def _indices(values: np.ndarray, path: Path, key: str, upper: int) -> np.ndarray:
    """1-based integers in [1, upper] -> 0-based int64 (flattened)."""
    flat = values.ravel()
    if not np.all(np.isfinite(flat)) or np.any(flat != np.round(flat)):
        raise DatasetError(f"{path}: '{key}' must hold integers")
    if flat.size and (flat.min() < 1 or flat.max() > upper):
        raise DatasetError(
            f"{path}: '{key}' must lie in [1, {upper}] (1-based), found {flat.min():g}..{flat.max():g}"
        )
    return flat.astype(np.int64) - 1


def _strings(mat: dict[str, Any], key: str, path: Path) -> list[str] | None:
    """A MATLAB cell array of strings (as loadmat returns it) as a list."""
    if key not in mat:
        return None
    value = np.asarray(mat[key])
    if value.dtype.kind in "US":
        return [str(v).strip() for v in value.ravel()]
    if value.dtype != object:
        raise DatasetError(f"{path}: '{key}' must be a cell array of strings")
    out = []
    for item in value.ravel():
        arr = np.asarray(item)
        if arr.dtype.kind not in "US":
            raise DatasetError(f"{path}: '{key}' must be a cell array of strings")
        out.append("".join(str(s) for s in arr.ravel()).strip())
    return out
