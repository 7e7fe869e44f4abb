"""All reading and writing of artifacts: zarr v3 stores, JSON tables, atomic commits.

Layout rule: every per-sample array is chunked along axis 0 and stored with zarr's
sharding codec, one shard per ``chunk_size`` samples. A shard is the unit of
streaming and of parallel work, so workers writing different shards never touch the
same file, and a store holds few files (DVC slows down on directories of 10^4+
small files). Every array records its dims, range and the params that made it.

Atomicity rule: a stage writes each output into a temporary sibling and renames it
into place only when complete, so a failed or killed stage leaves no half-written
artifact behind.

Damage rule: :func:`open_store` checks that every chunk file of every array is whole
(a cut-short or padded file, or a shard whose index fails its CRC32C) before a stage
reads anything, so a damaged artifact is an error naming the file, never a silently
different array. A flipped byte inside a chunk's compressed data is not visible here
(blosc keeps no checksum): that is what DVC's hashes are for (``python -m flows.verify``).

Out-of-space rule: a write that fails for lack of room (ENOSPC, EDQUOT, EFBIG) is a
:class:`StoreError` naming the output; the temporary sibling is deleted and whatever was
at the output path before is untouched.

Resume rule: a stage that fills shards can instead write into a deterministic hidden
sibling, ``.<name>.partial-<fingerprint>/`` (see :func:`resumable_output`), with a
completion marker per shard written only after that shard's data. A killed run leaves
the partial behind (DVC deletes a stage's declared outs before running it, not hidden
siblings); the rerun with the same fingerprint (same inputs, params and code) skips
the shards already marked, and the output still appears only by one final rename.

Encoding rule: a float32 per-sample array that stays close to another array of the same
store (adversarial images to their clean images) can be stored relative to it,
``create_array(..., relative=Relative(reference, offsets, constants))``: per element a
uint16 word naming a prediction (``reference + offset`` or a constant) and the integer
difference of the float bits to it, the few elements that fit no word kept whole in two
escape planes. The round trip is bitwise for any float32 values (``-0.0``, subnormals,
NaN payloads); the attack store's images take ~5.3x fewer bytes than float32. The encode
happens in :func:`write_shard`/:func:`write_samples`, where the shard is written (a Dask
worker, say), from the reference's shard, which is written first. Readers get the values
through :func:`decoded` (lazy, indexable like the zarr array) or :func:`read_array`;
:func:`require_array` refuses such an array, so no reader takes the words for values.
The codec and why it is built this way: the section "arrays stored relative to a
reference" below.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import functools
import hashlib
import itertools
import json
import logging
import os
import resource
import shutil
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import zarr
from zarr.codecs import BloscCodec
from zarr.storage import LocalStore

from advinterp.errors import StoreError

log = logging.getLogger(__name__)

STORE_FORMAT = "advinterp-store/1"
_INNER_CHUNK_MAX = 16
# A shard up to this size is one plain chunk: inner chunks only pay off for reading a
# few samples of a large shard (images), and the sharding codec costs ~2 ms a write.
_SMALL_SHARD = 1 << 20
# An encoded array's words of a shard up to this size are one plain chunk: reading them
# whole measured faster than through the sharding codec's inner chunks (they compress
# ~6x, so a reader wanting a few samples of the shard decompresses little).
_SMALL_ENCODED_SHARD = 1 << 22
_PLANES = 3  # an encoded array's planes: the words, then the escape planes (high, low)
# Byte shuffle + lz4hc 5, by measurement on the attack store's words (bench/storage.py):
# byte shuffle ~10 % smaller than bitshuffle (the low byte holds the code and small
# residuals, the high byte is mostly 0); zstd 5 is ~30 % smaller (4.2 vs 5.8 KiB an image)
# but reading every set measured ~12 % slower, and the target here is to read no slower
# than float32 (lz4 without hc was 8.1 KiB, under 4x with the clean images' share).
_WORDS_CODEC: dict[str, Any] = {"cname": "lz4hc", "clevel": 5, "shuffle": "shuffle"}
# A reference up to this size is read whole once per process and kept (see
# _reference_values): every set of the attack store decodes against the same clean images.
_REFERENCE_CACHE_BYTES = 128 << 20
_TMP_MARK = ".tmp-"
_PARTIAL_MARK = ".partial-"
_SMALL_FILE = 1 << 20  # input files up to this size are fingerprinted by content
# errno of a write that found no room: a full disk, a quota, RLIMIT_FSIZE.
_NO_ROOM = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})
_LOW_SPACE = 1 << 20  # below this many free bytes a failed write is taken as disk full


def _tmp_sibling(path: Path) -> Path:
    return path.with_name(f".{path.name}{_TMP_MARK}{os.getpid()}")


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()


def clean_stale(path: Path) -> None:
    """Remove temporary siblings of ``path`` left by a killed earlier run."""
    path = Path(path)
    if not path.parent.exists():
        return
    for stale in path.parent.glob(f".{path.name}{_TMP_MARK}*"):
        log.info("removing %s left by an interrupted run", stale)
        _remove(stale)


def _largest_file(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    if path.is_dir():
        return max((p.stat().st_size for p in path.rglob("*") if p.is_file()), default=0)
    return 0


def _no_room(err: BaseException, tmp: Path) -> str | None:
    """Why writing ``tmp`` failed for lack of room, or None when it did not.

    Either ``err`` says so (its errno), or it is a write error of a library that drops
    the errno (``torch.save`` raises ``RuntimeError``) while the filesystem holding
    ``tmp`` has (almost) no free space left, or a file of ``tmp`` has reached the
    process's file size limit (``RLIMIT_FSIZE``, ``ulimit -f``).
    """
    limit = resource.getrlimit(resource.RLIMIT_FSIZE)[0]
    limited = f" (file size limit {limit} bytes)" if limit != resource.RLIM_INFINITY else ""
    if isinstance(err, OSError) and err.errno in _NO_ROOM:
        return os.strerror(err.errno) + (limited if err.errno == errno.EFBIG else "")
    if not isinstance(err, OSError | RuntimeError):
        return None
    cause = f" ({type(err).__name__}: {err})"
    try:
        st = os.statvfs(tmp.parent)
    except OSError:
        return None
    if st.f_bavail * st.f_frsize < _LOW_SPACE:
        return os.strerror(errno.ENOSPC) + cause
    if limited and _largest_file(tmp) >= limit:
        return os.strerror(errno.EFBIG) + limited + cause
    return None


@contextlib.contextmanager
def atomic_output(path: Path | str) -> Iterator[Path]:
    """Yield a temporary sibling of ``path``; move it into place only on success.

    On an exception the temporary is deleted and whatever was at ``path`` before is
    left untouched. A SIGKILL leaves only a hidden ``.<name>.tmp-<pid>`` sibling, which
    the next run removes.

    Raises:
        StoreError: the write ran out of room (full disk, quota, file size limit).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    clean_stale(path)
    tmp = _tmp_sibling(path)
    try:
        yield tmp
    except BaseException as err:
        why = _no_room(err, tmp)
        if tmp.exists():
            _remove(tmp)
        if why is not None:
            raise StoreError(
                f"{path}: {why} while writing it; nothing was written"
                f"{', the previous one is unchanged' if path.exists() else ''}. "
                "Free some space there and run again"
            ) from err
        raise
    _commit(tmp, path)


def _commit(tmp: Path, path: Path) -> None:
    """Move the complete ``tmp`` to ``path``, replacing what was there."""
    if not tmp.exists():
        raise StoreError(f"{path}: the stage finished without writing this output")
    if path.exists() or path.is_symlink():
        # Two renames instead of rmtree-then-rename: the old output disappears only
        # once the new one is complete.
        old = path.with_name(f".{path.name}.old-{os.getpid()}")
        os.replace(path, old)
        os.replace(tmp, path)
        _remove(old)
    else:
        os.replace(tmp, path)


def write_json(path: Path | str, obj: Any) -> None:
    """Write ``obj`` as pretty JSON, atomically (``dvc metrics`` reads these)."""
    with atomic_output(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, sort_keys=True, default=_json_default) + "\n")


def write_text(path: Path | str, text: str) -> None:
    """Write a text artifact (markdown, HTML) atomically."""
    with atomic_output(path) as tmp:
        tmp.write_text(text)


def write_csv(
    path: Path | str,
    table: pd.DataFrame | Sequence[Mapping[str, Any]],
    float_format: str | None = None,
) -> None:
    """Write a table (a frame, or records such as a training history) as CSV, atomically."""
    frame = table if isinstance(table, pd.DataFrame) else pd.DataFrame(list(table))
    with atomic_output(path) as tmp:
        frame.to_csv(tmp, index=False, float_format=float_format)


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def read_json(path: Path | str) -> Any:
    """Read a JSON artifact, with a clear error naming the file."""
    path = Path(path)
    try:
        return json.loads(path.read_text())
    except FileNotFoundError as err:
        raise StoreError(f"{path}: not found (run the stage that makes it first)") from err
    except json.JSONDecodeError as err:
        raise StoreError(f"{path}: not valid JSON: {err}") from err


def create_group(path: Path | str, attrs: Mapping[str, Any] | None = None) -> zarr.Group:
    """Create a new zarr v3 group at ``path`` (normally the temporary from ``atomic_output``)."""
    group = zarr.open_group(str(path), mode="w", zarr_format=3)
    group.attrs.update({"format": STORE_FORMAT, **(attrs or {})})
    return group


def _inner_chunk(chunk_size: int) -> int:
    return max(d for d in range(1, min(chunk_size, _INNER_CHUNK_MAX) + 1) if chunk_size % d == 0)


# Chunk (shard) files named ``c.0.0.0`` beside the array's zarr.json instead of nested
# ``c/0/0/0`` directories: DVC walks every directory of every zarr output and dependency
# for each stage it checks, and ignore-matches each one. Measured on the committed
# workspace: 4537 directories -> 1134 for the same 4265 files; a no-op `dvc repro` of the
# whole DAG 4.84 s -> 3.51 s and `dvc status` 4.00 s -> 2.57 s (medians of 5 and 3).
# zarr reads the separator from each array's metadata, so stores written before this
# still read.
CHUNK_KEYS: dict[str, Any] = {"name": "default", "separator": "."}


def _reopen(
    group: zarr.Group,
    name: str,
    shape: tuple[int, ...],
    dtype: Any,
    chunk_size: int,
    encoding: Relative | None,
    attrs: Mapping[str, Any],
) -> zarr.Array:
    """The array ``name`` a resumed run (:func:`resumable_output`) created before it was
    killed, reopened with the shards already written, if it has the layout asked for."""
    arr = group[name]
    if (
        not isinstance(arr, zarr.Array)
        or tuple(arr.shape) != tuple(shape)
        or arr.dtype != np.dtype(dtype)
        or sample_chunk_size(arr) != chunk_size
        or encoding_of(arr) != encoding
    ):
        raise StoreError(f"{group.store}/{arr.path}: exists with a different layout")
    arr.attrs.update(attrs)
    return arr


def create_array(
    group: zarr.Group,
    name: str,
    shape: tuple[int, ...],
    dtype: Any,
    *,
    dims: tuple[str, ...],
    chunk_size: int,
    attrs: Mapping[str, Any] | None = None,
    relative: Relative | None = None,
) -> zarr.Array:
    """Create a per-sample array sharded along axis 0 (``chunk_size`` samples a shard).

    Args:
        dims: one name per axis, e.g. ``("sample", "channel", "y", "x")``.
        attrs: units/range and provenance, stored with the array.
        relative: store the (float32) array losslessly relative to the reference array
            it names, in the same store and of the same shape, written before this one
            (see the codec's section below). Write it with :func:`write_shard` /
            :func:`fill_shards` / :func:`write_samples` and read it with
            :func:`decoded` or :func:`read_array`, which decode transparently.
    """
    if len(dims) != len(shape):
        raise ValueError(f"{name}: {len(dims)} dims for a {len(shape)}-d shape")
    if relative is not None:
        return _create_encoded(group, name, shape, dtype, dims, chunk_size, attrs, relative)
    if name in group:
        return _reopen(
            group, name, shape, dtype, chunk_size, None, {"dims": list(dims), **(attrs or {})}
        )
    rest = tuple(max(s, 1) for s in shape[1:])
    small = chunk_size * int(np.prod(rest)) * np.dtype(dtype).itemsize <= _SMALL_SHARD
    arr = group.create_array(
        name,
        shape=shape,
        dtype=dtype,
        chunks=(chunk_size if small else _inner_chunk(chunk_size), *rest),
        shards=None if small else (chunk_size, *rest),
        compressors=BloscCodec(cname="zstd", clevel=3, shuffle="shuffle"),
        dimension_names=dims,
        fill_value=0,
        chunk_key_encoding=CHUNK_KEYS,
    )
    arr.attrs.update({"dims": list(dims), **(attrs or {})})
    return arr


def write_array(
    group: zarr.Group,
    name: str,
    data: np.ndarray,
    *,
    dims: tuple[str, ...],
    chunk_size: int,
    attrs: Mapping[str, Any] | None = None,
    relative: Relative | None = None,
) -> zarr.Array:
    """Create an array like ``create_array`` and fill it with ``data`` in one go."""
    data = np.asarray(data)
    arr = create_array(
        group,
        name,
        data.shape,
        data.dtype,
        dims=dims,
        chunk_size=chunk_size,
        attrs=attrs,
        relative=relative,
    )
    if relative is not None:
        for sl in shard_slices(len(data), chunk_size):
            write_samples(arr, sl, data[sl])
    elif data.size:
        arr[...] = data
    return arr


def open_store(path: Path | str, required: Mapping[str, int] | None = None) -> zarr.Group:
    """Open an artifact read-only and check it has the arrays a stage needs.

    Args:
        required: array name -> number of dimensions it must have.

    Raises:
        StoreError: the store is missing, not an advinterp store, or lacks an array.
    """
    path = Path(path)
    if not (path / "zarr.json").is_file():
        raise StoreError(f"{path}: not found or not a zarr v3 store (run the stage that makes it)")
    try:
        group = zarr.open_group(str(path), mode="r")
    except Exception as err:  # zarr raises several unrelated types for corrupt metadata
        raise StoreError(f"{path}: unreadable zarr store: {err}") from err
    if group.attrs.get("format") != STORE_FORMAT:
        raise StoreError(f"{path}: not an {STORE_FORMAT} store")
    for name, ndim in (required or {}).items():
        arr = decoded(group, name, str(path))
        if arr.ndim != ndim:
            raise StoreError(f"{path}/{name}: expected {ndim} dims, found {arr.ndim}")
    check_chunks(group, path)
    return group


_BLOSC_HEADER = 16  # c-blosc 1 frame header; bytes 4:8 raw size, 12:16 frame size
_NO_CHUNK = (1 << 64) - 1  # a shard index entry of an inner chunk never written


def _codec_names(codecs: Any) -> list[str]:
    return [str(c.get("name")) for c in codecs]


def _chunk_layout(arr: zarr.Array) -> int | None:
    """Inner chunks per storage file when ``arr`` has the layout :func:`create_array`
    writes (0: plain blosc chunks; n: shards of n blosc chunks, CRC32C index at the
    end), or None for any other layout (not checked)."""
    meta: Any = arr.metadata.to_dict()  # the zarr.json content: a JSON mapping
    codecs = list(meta.get("codecs") or [])
    if _codec_names(codecs) == ["bytes", "blosc"]:
        return 0
    if _codec_names(codecs) != ["sharding_indexed"] or arr.shards is None:
        return None
    cfg = codecs[0].get("configuration", {})
    if (
        _codec_names(cfg.get("codecs", [])) != ["bytes", "blosc"]
        or _codec_names(cfg.get("index_codecs", [])) != ["bytes", "crc32c"]
        or cfg.get("index_location", "end") != "end"
    ):
        return None
    return int(np.prod([s // c for s, c in zip(arr.shards, arr.chunks, strict=True)]))


def _blosc_frame_problem(head: bytes, size: int, raw: int) -> str | None:
    """What is wrong with a blosc frame of ``size`` bytes starting with ``head``."""
    if len(head) < _BLOSC_HEADER or size < _BLOSC_HEADER:
        return f"{size} bytes, shorter than a blosc header"
    nbytes = int.from_bytes(head[4:8], "little")
    cbytes = int.from_bytes(head[12:16], "little")
    if nbytes != raw:
        return f"its header says {nbytes} raw bytes, the chunk has {raw}"
    if cbytes != size:
        return f"{size} bytes where its header says {cbytes}"
    return None


def _chunk_file_problem(file: Path, inner: int, raw: int) -> str | None:
    """What is wrong with one stored chunk file (plain when ``inner`` is 0, else a shard
    of ``inner`` chunks), or None when it is whole."""
    import google_crc32c  # zarr's own CRC32C (its crc32c codec), imported only here

    size = file.stat().st_size
    with open(file, "rb") as f:
        if not inner:
            return _blosc_frame_problem(f.read(_BLOSC_HEADER), size, raw)
        index_size = 16 * inner + 4
        if size < index_size:
            return f"{size} bytes, shorter than its shard index ({index_size})"
        f.seek(size - index_size)
        index = f.read(index_size)
        if google_crc32c.value(index[:-4]) != int.from_bytes(index[-4:], "little"):
            return "its shard index fails its CRC32C checksum"
        entries = np.frombuffer(index[:-4], dtype="<u8").reshape(inner, 2)
        for offset, length in entries.tolist():
            if offset == _NO_CHUNK and length == _NO_CHUNK:
                continue
            if offset + length > size - index_size:
                return f"an inner chunk ends at byte {offset + length} of {size - index_size}"
            f.seek(offset)
            problem = _blosc_frame_problem(f.read(_BLOSC_HEADER), length, raw)
            if problem is not None:
                return f"inner chunk at byte {offset}: {problem}"
    return None


def check_chunks(group: zarr.Group, where: Path | str | None = None) -> None:
    """Check every chunk file of every array in ``group`` (a local store) is whole.

    Reads only headers and shard indexes: each blosc frame's recorded size must match
    its file (or its shard index entry) and the chunk's raw size, and each shard index
    must pass its CRC32C. Missing chunk files are not errors (zarr does not write
    chunks that are all fill value). Arrays of another layout are skipped.

    Raises:
        StoreError: naming the first damaged chunk file.
    """
    if not isinstance(group.store, LocalStore):
        return
    root = Path(group.store.root)
    where = Path(where) if where is not None else root
    for name, node in group.members(max_depth=None):
        if not isinstance(node, zarr.Array):
            continue
        inner = _chunk_layout(node)
        if inner is None:
            continue
        raw = int(np.prod(node.chunks)) * node.dtype.itemsize
        for file in chunk_files(root / node.path):
            problem = _chunk_file_problem(file, inner, raw)
            if problem is not None:
                rel = file.relative_to(root).as_posix()
                raise StoreError(
                    f"{where}/{rel}: damaged chunk of '{name}' ({problem}); restore the "
                    "artifact (dvc checkout, or rerun the stage that writes it)"
                )


def chunk_files(array_dir: Path) -> list[Path]:
    """Every chunk (or shard) file of the zarr array stored in ``array_dir``: ``c.0.1``
    beside its zarr.json (flat keys, :data:`CHUNK_KEYS`) or ``c/0/1`` below it (zarr's
    default, stores written before). Sorted; [] when none was written."""
    nested = array_dir / "c"
    if nested.is_dir():
        return sorted(p for p in nested.rglob("*") if p.is_file())
    if not array_dir.is_dir():
        return []
    return sorted(
        p for p in array_dir.iterdir() if p.is_file() and (p.name == "c" or p.name.startswith("c."))
    )


def _where(group: zarr.Group) -> str:
    """The group's location for error messages: its directory (and path inside)."""
    root = str(getattr(group.store, "root", group.store))
    return f"{root}/{group.path}" if group.path else root


def store_dir(arr: zarr.Array) -> Path:
    """The directory of the local store holding ``arr`` (what other processes reopen).

    Raises:
        StoreError: ``arr`` lives in another kind of store (memory, remote).
    """
    if not isinstance(arr.store, LocalStore):
        raise StoreError(f"{arr.store}/{arr.path}: not in a local directory store")
    return Path(arr.store.root)


def _require_node(group: zarr.Group, name: str, source: str | None) -> zarr.Array:
    where = _where(group) if source is None else source
    if name not in group:
        raise StoreError(f"{where}: missing array '{name}'")
    node = group[name]
    if not isinstance(node, zarr.Array):
        raise StoreError(f"{where}/{name}: expected an array, found a group")
    return node


def require_array(group: zarr.Group, name: str, source: str | None = None) -> zarr.Array:
    """The array ``name`` of ``group`` (zarr types ``group[name]`` as array or group).

    Args:
        source: names the store in errors (default: the group's directory).

    Raises:
        StoreError: naming the store and ``name`` when there is no such member, it is a
            group, or it is stored relative to a reference (read that with
            :func:`decoded`: its stored words are not its values).
    """
    node = _require_node(group, name, source)
    spec = encoding_of(node)
    if spec is not None:
        where = _where(group) if source is None else source
        raise StoreError(
            f"{where}/{name}: stored relative to '{spec.reference}'; read it with "
            "advinterp.store.decoded or read_array"
        )
    return node


def read_array(group: zarr.Group, name: str, source: str | None = None) -> np.ndarray:
    """All of the array ``name`` of ``group`` in memory (checked as :func:`decoded`, decoded)."""
    return np.asarray(decoded(group, name, source)[...])


def str_list_attr(
    group: zarr.Group, key: str, source: str | None = None, default: list[str] | None = None
) -> list[str]:
    """The group attribute ``key``, a JSON list of strings (e.g. class names).

    Args:
        default: returned when the attribute is absent (``None``: it is required).

    Raises:
        StoreError: naming the store and ``key`` when the attribute is missing (with no
            ``default``) or not a list of strings.
    """
    where = _where(group) if source is None else source
    if key not in group.attrs:
        if default is None:
            raise StoreError(f"{where}: missing attribute '{key}'")
        return list(default)
    value = group.attrs[key]
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
        raise StoreError(f"{where}: attribute '{key}' must be a list of strings")
    return [str(v) for v in value]


def shard_slices(n: int, chunk_size: int) -> list[slice]:
    """The sample ranges of the shards of an ``n``-sample array (the unit of work)."""
    return [slice(s, min(s + chunk_size, n)) for s in range(0, n, chunk_size)]


def sample_chunk_size(arr: zarr.Array | DecodedArray) -> int:
    """Samples per shard of an existing array (the granularity for aligned writes)."""
    if isinstance(arr, DecodedArray):
        arr = arr.stored
    shards = arr.shards
    return int(shards[0] if shards is not None else arr.chunks[0])


def write_samples(arr: zarr.Array, sl: slice, data: Any) -> None:
    """``arr[sl] = data``, encoded first when ``arr`` is stored relative to a reference.

    The encoding reads the reference's samples ``sl`` from the same store, so a shard of
    the reference must be written before the same shard of the arrays relative to it.
    """
    spec = encoding_of(arr)
    if spec is None:
        arr[sl] = data
        return
    where = f"{getattr(arr.store, 'root', arr.store)}/{arr.path}"
    reference = np.asarray(_reference_array(arr.store, spec.reference, where)[sl])
    values = np.asarray(data)
    if values.dtype != np.float32:
        raise StoreError(f"{where}: float32 values needed (lossless), got {values.dtype}")
    words, planes = encode(values, reference, spec)
    arr[sl, 0] = words
    if planes is not None:
        arr[sl, 1:] = np.moveaxis(planes, 0, 1)


def write_shard(outputs: Mapping[str, zarr.Array], result: Mapping[str, Any], sl: slice) -> None:
    """Write one shard's ``result`` (name -> array of ``sl``'s length) into ``outputs``.

    Arrays stored relative to a reference are encoded here, in the process writing the
    shard (a Dask worker, say).
    """
    for name, arr in outputs.items():
        data = np.asarray(result[name])
        if data.shape[:1] != (sl.stop - sl.start,):
            raise ValueError(f"{name}: shard {sl} got {data.shape[0]} samples")
        write_samples(arr, sl, data)


def fill_shards(
    outputs: Mapping[str, zarr.Array],
    compute: Callable[[slice], Mapping[str, Any]],
    n: int,
    chunk_size: int,
    desc: str = "shards",
    shards: list[int] | None = None,
    markers: ShardMarkers | None = None,
) -> None:
    """Fill per-sample ``outputs`` shard by shard: ``compute(slice) -> {name: array}``.

    Each call covers exactly one storage shard, so writes are shard-aligned: separate
    processes filling different ``shards`` never write the same file. With ``markers``
    (from :class:`Partial`), shards already marked complete are skipped and each shard
    is marked only after all its outputs are written.
    """
    from advinterp.progress import track  # local: progress is optional machinery

    slices = shard_slices(n, chunk_size)
    todo = list(range(len(slices)) if shards is None else shards)
    if markers is not None:
        todo = markers.pending(todo, desc)

    for k in track(todo, total=len(todo), desc=desc, unit="shard"):
        write_shard(outputs, compute(slices[k]), slices[k])
        if markers is not None:
            markers.mark(k)


# -- arrays stored relative to a reference (the codec) ------------------------------------
#
# An adversarial image differs from its clean image by a few multiples of the attack's
# step α in almost every pixel, so its float32 bits compress as badly as the clean image's
# (blosc-zstd, byte shuffle: ~1.3x). Coding the bits against the clean image's bits barely
# helps: on the attack store (every set), XOR of the bit patterns gives ~1.2x (bitshuffle
# or byte shuffle + zstd) and their integer difference (zigzag, byte shuffle + zstd)
# ~2.3x over today's float32 (``python -m bench storage`` measures these each run),
# because ``x + k·α`` has a different bit pattern for every clean value ``x``. What is
# left once ``k`` is known is rounding: the attack's repeated float additions land within
# a few units in the last place (ULP) of ``fl(x + fl(k·α))``. So each element is stored as
#
# * a *code* naming its prediction: ``reference + offset`` for one of the given offsets
#   (``k·α``, ``±eps``) or one of the given constants (0 and 1 where it clipped, ``k·α``
#   and ``1 - k·α`` after a clip), and
# * the integer difference ``r`` between the element's bit pattern and the prediction's,
#
# packed into one uint16 word: ``code | zigzag(r) << 5``, at most 32 predictions and
# ``|r| <= 1023``. An element that does not fit (NaN, inf, a value far from every
# prediction, a non-finite or subnormal reference) is *escaped*: its residual field is
# all ones and its bits are kept whole, high and low 16 bits, in two escape planes.
# Decoding is ``bits(prediction) + r``, integer arithmetic modulo 2^32, so the round trip
# is bitwise for any input (``-0.0``, subnormals, NaN payloads). The words, byte shuffle
# + lz4hc, take ~6.5x fewer bytes than the floats (~5.8 KiB instead of ~38 KiB per
# 3x64x64 image, zstd would give ~4.2 KiB; see _WORDS_CODEC); with the clean images'
# share, ~5.3x.
#
# The prediction is :func:`predict`; decoding repeats its float32 operation element by
# element in one loop compiled by numba (:func:`_decode_elements`). The same decode as
# numpy passes over cache-sized blocks (a gather of the levels, a masked copy for the
# constants, five integer passes for the residual) measured ~4x slower and read the
# attack store at 0.82 of float32's throughput; no library knows this format, so the
# loop is ours. Elements whose reference or prediction is non-finite or
# subnormal are escaped, so the result never depends on NaN payload propagation or on a
# flush-to-zero mode that differs between the writing and the reading process.

ENCODING = "relative/1"
CODE_BITS = 5
MAX_LEVELS = 1 << CODE_BITS  # predictions a word can name
_CODE_MASK = MAX_LEVELS - 1
_RES_BITS = 16 - CODE_BITS
_ESCAPE = (1 << _RES_BITS) - 1  # residual field of an escaped element (zigzag of -1024)
_R_MAX = (1 << (_RES_BITS - 1)) - 1  # |r| <= 1023 fits; -1024 would collide with _ESCAPE
ESCAPED_WORD = _ESCAPE << CODE_BITS  # words at or above this are escaped
_TINY = np.finfo(np.float32).tiny
_PART_MIN = 1 << 17  # elements: smaller reads decode on one thread
_BUCKETS = 4096  # of the encoder's nearest-level table
_DECODE_THREADS = min(4, len(os.sched_getaffinity(0)))


def _f32(value: float) -> float:
    return float(np.float32(value))


@dataclass(frozen=True)
class Relative:
    """How an array is stored relative to a reference array of the same shape.

    Attributes:
        reference: path, from the store's root, of the float32 reference array (written
            before any shard of the encoded array).
        offsets: predictions ``reference + offset`` (float32 values).
        constants: predictions independent of the reference (float32 values).
    """

    reference: str
    offsets: tuple[float, ...] = (0.0,)
    constants: tuple[float, ...] = ()

    def __post_init__(self) -> None:
        offsets = tuple(_f32(o) for o in self.offsets)
        constants = tuple(_f32(c) for c in self.constants)
        n = len(offsets) + len(constants)
        if not offsets or n > MAX_LEVELS:
            raise ValueError(f"1 to {MAX_LEVELS - len(constants)} offsets needed, got {n} levels")
        if not all(np.isfinite(offsets + constants)):
            raise ValueError("offsets and constants must be finite float32 values")
        object.__setattr__(self, "offsets", offsets)
        object.__setattr__(self, "constants", constants)

    @property
    def levels(self) -> np.ndarray:
        """Per code the value added to the reference (offsets) or taken (constants), float32."""
        return np.array(self.offsets + self.constants, np.float32)

    def to_attrs(self) -> dict[str, Any]:
        return {
            "name": ENCODING,
            "reference": self.reference,
            "offsets": list(self.offsets),
            "constants": list(self.constants),
        }

    @classmethod
    def from_attrs(cls, attrs: Mapping[str, Any]) -> Relative:
        """The encoding recorded by :meth:`to_attrs` (ValueError for another encoding)."""
        if attrs.get("name") != ENCODING:
            raise ValueError(f"unknown encoding {attrs.get('name')!r} (expected {ENCODING})")
        return cls(str(attrs["reference"]), tuple(attrs["offsets"]), tuple(attrs["constants"]))


def predict(reference: np.ndarray, codes: np.ndarray, spec: Relative) -> np.ndarray:
    """The prediction of each element: ``reference + offset`` or the constant its code names.

    Shape:
        reference: any, float32; codes: same shape, int < number of levels.
        returns: same shape, float32.
    """
    level = np.take(spec.levels, codes)
    out = reference + level
    if spec.constants:
        np.copyto(out, level, where=codes >= len(spec.offsets))
    return out


def _zigzag(r: np.ndarray) -> np.ndarray:
    """Small signed int32 -> small unsigned (0, -1, 1, -2 ... -> 0, 1, 2, 3 ...)."""
    return ((r << 1) ^ (r >> 31)).view(np.uint32)


def _regular(a: np.ndarray) -> np.ndarray:
    """Finite and either zero or normal: float results that do not depend on the FPU mode."""
    mag = np.abs(a)
    return np.isfinite(a) & ((mag >= _TINY) | (mag == 0))


def _nearest(levels: Sequence[float], target: np.ndarray) -> np.ndarray:
    """Index into ``levels`` of the level nearest to each ``target``, through a table of
    4096 buckets over the levels' range (a per-element binary search measured ~10x
    slower). Within one bucket of a midpoint the pick may be the other neighbour; any
    code decodes, the element is then just escaped. NaN targets get an arbitrary level.
    """
    values = np.asarray(levels, np.float32)
    lo, hi = float(values.min()), float(values.max())
    scale = _BUCKETS / (hi - lo) if hi > lo else 0.0
    centres = lo + (np.arange(_BUCKETS) + 0.5) / scale if scale else np.full(_BUCKETS, lo)
    table = np.abs(centres[:, None] - values[None, :]).argmin(axis=1).astype(np.uint8)
    with np.errstate(invalid="ignore"):
        bucket = ((target - np.float32(lo)) * np.float32(scale)).astype(np.int32)
    np.clip(bucket, 0, _BUCKETS - 1, out=bucket)
    return np.take(table, bucket)


def encode(values: np.ndarray, reference: np.ndarray, spec: Relative) -> tuple[np.ndarray, Any]:
    """Words and escape planes of ``values`` relative to ``reference``.

    Each element gets the offset nearest to ``value - reference`` or the constant nearest
    to ``value``, whichever leaves the smaller residual.

    Shape:
        values, reference: same shape, float32 (any values).
        returns: words, same shape, uint16; escape planes (2, *shape) uint16 (high and
        low 16 bits of each escaped element's bits, 0 elsewhere), or None when no
        element was escaped.
    """
    values = np.ascontiguousarray(values)
    reference = np.ascontiguousarray(reference)
    if values.dtype != np.float32 or reference.dtype != np.float32:
        raise TypeError(
            f"float32 values and reference needed, got {values.dtype}, {reference.dtype}"
        )
    if values.shape != reference.shape:
        raise ValueError(f"values {values.shape} and reference {reference.shape} differ in shape")
    bits = values.view(np.int32)
    with np.errstate(over="ignore", invalid="ignore"):
        codes = _nearest(spec.offsets, values - reference)
        pred = predict(reference, codes, spec)
        # Wraps modulo 2^32; decoding adds it back the same way.
        r = bits - pred.view(np.int32)
        if spec.constants:
            by_value = _nearest(spec.constants, values) + np.uint8(len(spec.offsets))
            # A constant's prediction is the constant (what predict() gives for its code).
            pred_c = np.take(spec.levels, by_value)
            r_c = bits - pred_c.view(np.int32)
            closer = np.abs(r_c) < np.abs(r)
            codes = np.where(closer, by_value, codes)
            pred = np.where(closer, pred_c, pred)
            r = np.where(closer, r_c, r)
    fits = (r >= -_R_MAX) & (r <= _R_MAX) & _regular(reference) & _regular(pred)
    words = codes.astype(np.uint16)
    words |= _zigzag(r).astype(np.uint16) << CODE_BITS  # garbage where not fits: escaped
    if fits.all():
        return words, None
    escaped = ~fits
    words[escaped] = ESCAPED_WORD
    raw = values.view(np.uint32)
    planes = np.zeros((2, *values.shape), np.uint16)
    planes[0][escaped] = (raw[escaped] >> 16).astype(np.uint16)
    planes[1][escaped] = (raw[escaped] & 0xFFFF).astype(np.uint16)
    return words, planes


def has_escapes(words: np.ndarray) -> bool:
    """Whether any of ``words`` is escaped (its bits are in the escape planes)."""
    return bool(words.size) and int(words.max()) >= ESCAPED_WORD


_pool: ThreadPoolExecutor | None = None


def _decode_pool() -> ThreadPoolExecutor:
    """This process's decoding threads, started once (starting threads per read measured
    ~5 ms each on a loaded machine)."""
    global _pool
    if _pool is None:
        _pool = ThreadPoolExecutor(_DECODE_THREADS, thread_name_prefix="decode")
    return _pool


def _forget_pool() -> None:
    global _pool
    _pool = None  # a forked child has none of its parent's threads


os.register_at_fork(after_in_child=_forget_pool)


def _decode_elements(
    words: np.ndarray, reference: np.ndarray, level: np.ndarray, n_offsets: int, out: np.ndarray
) -> None:
    """:func:`predict` plus the residual, one element at a time (compiled by numba).

    The prediction is the same float32 operation as :func:`predict`'s (``reference +
    offset``, or the constant itself); the residual is unzigzagged and added to the
    prediction's bits as int32, wrapping as :func:`encode` subtracted it. Escaped words
    decode to garbage here and are patched by :func:`decode`.

    Shape:
        words: (n,) uint16; reference, out: (n,) float32; level: (MAX_LEVELS,) float32.
    """
    bits = out.view(np.int32)
    for i in range(words.size):
        w = np.int32(words[i])
        code = w & _CODE_MASK
        out[i] = level[code] if code >= n_offsets else reference[i] + level[code]
        z = w >> CODE_BITS
        bits[i] += (z >> 1) ^ -(z & 1)


@functools.cache
def _decode_kernel() -> Callable[..., None]:
    """:func:`_decode_elements` compiled, once per process (from numba's on-disk cache
    after the first process; numba is imported here, so only processes that decode pay
    its ~0.13 s import)."""
    import numba

    return numba.njit(nogil=True, cache=True)(_decode_elements)


def _decode_part(
    w: np.ndarray, x: np.ndarray, o: np.ndarray, spec: Relative, start: int, stop: int
) -> None:
    level = np.zeros(MAX_LEVELS, np.float32)  # unused codes predict the constant 0
    level[: len(spec.levels)] = spec.levels
    _decode_kernel()(w[start:stop], x[start:stop], level, len(spec.offsets), o[start:stop])


def decode(
    words: np.ndarray,
    reference: np.ndarray,
    spec: Relative,
    planes: np.ndarray | None = None,
    *,
    escaped: bool | None = None,
) -> np.ndarray:
    """The values :func:`encode` was given, bitwise.

    Args:
        planes: the escape planes, needed only when :func:`has_escapes` (the store reads
            them only then).
        escaped: :func:`has_escapes` of ``words`` when the caller already knows it.

    Shape:
        words: any, uint16; reference: same shape, float32; planes: (2, *shape) uint16.
        returns: same shape, float32.

    Raises:
        ValueError: escaped words and no planes.
    """
    words = np.ascontiguousarray(words, np.uint16)
    reference = np.ascontiguousarray(reference, np.float32)
    if words.shape != reference.shape:
        raise ValueError(f"words {words.shape} and reference {reference.shape} differ in shape")
    out = np.empty(words.shape, np.float32)
    w, x, o = words.reshape(-1), reference.reshape(-1), out.reshape(-1)
    # Contiguous parts, one per thread (the compiled loop releases the GIL): a large read
    # decodes on as many cores as zarr decompresses the float32 chunks on (2 threads on
    # 2 cores measured 1.45x faster than one for a 200-image set).
    parts = max(1, min(_DECODE_THREADS, w.size // _PART_MIN))
    bounds = [w.size * i // parts for i in range(parts)] + [w.size]
    spans = list(itertools.pairwise(bounds))
    if parts == 1:
        _decode_part(w, x, o, spec, *spans[0])
    else:
        list(_decode_pool().map(lambda span: _decode_part(w, x, o, spec, *span), spans))
    if has_escapes(words) if escaped is None else escaped:
        if planes is None:
            raise ValueError("escaped words need their escape planes")
        where = words >= ESCAPED_WORD
        hi = planes[0][where].astype(np.uint32)
        out.view(np.uint32)[where] = (hi << 16) | planes[1][where]
    return out


# -- the store side: where words and planes live, reading the reference ------------


def _create_encoded(
    group: zarr.Group,
    name: str,
    shape: tuple[int, ...],
    dtype: Any,
    dims: tuple[str, ...],
    chunk_size: int,
    attrs: Mapping[str, Any] | None,
    relative: Relative,
) -> zarr.Array:
    """The array behind ``create_array(..., relative=...)``: (n, 3, *rest) uint16 planes.

    Plane 0 holds the words, planes 1-2 the escaped elements' bits; each plane of a
    shard is its own chunk, so a reader reads the escape planes only where a word says
    so, and zarr writes no chunk for an escape plane that stays all zero.
    """
    where = f"{_where(group)}/{name}"
    if np.dtype(dtype) != np.float32 or len(shape) < 1:
        raise ValueError(f"{where}: only float32 per-sample arrays are stored relative")
    ref = _reference_array(group.store, relative.reference, where)
    if tuple(ref.shape) != tuple(shape) or ref.dtype != np.float32:
        raise StoreError(
            f"{where}: reference '{relative.reference}' is {ref.dtype} {tuple(ref.shape)}, "
            f"not float32 {tuple(shape)}"
        )
    rest = tuple(max(s, 1) for s in shape[1:])
    stored_shape = (shape[0], _PLANES, *shape[1:])
    meta = {"dims": list(dims), **(attrs or {}), "encoding": relative.to_attrs()}
    if name in group:
        return _reopen(group, name, stored_shape, "uint16", chunk_size, relative, meta)
    small = chunk_size * int(np.prod(rest)) * 2 <= _SMALL_ENCODED_SHARD
    arr = group.create_array(
        name,
        shape=stored_shape,
        dtype="uint16",
        chunks=(chunk_size if small else _inner_chunk(chunk_size), 1, *rest),
        shards=None if small else (chunk_size, _PLANES, *rest),
        compressors=BloscCodec(**_WORDS_CODEC),
        dimension_names=(dims[0], "plane", *dims[1:]),
        fill_value=0,
        chunk_key_encoding=CHUNK_KEYS,
    )
    arr.attrs.update(meta)
    return arr


def encoding_of(arr: zarr.Array) -> Relative | None:
    """How ``arr`` is stored relative to a reference, or None for a plain array."""
    attrs = arr.attrs.get("encoding")
    if attrs is None:
        return None
    try:
        if not isinstance(attrs, Mapping):
            raise TypeError("not a mapping")
        return Relative.from_attrs(attrs)
    except (KeyError, TypeError, ValueError) as err:
        raise StoreError(f"{arr.store}/{arr.path}: unreadable encoding {attrs!r}: {err}") from err


def _reference_array(store: Any, path: str, where: str) -> zarr.Array:
    try:
        ref = zarr.open_array(store=store, path=path, mode="r")
    except Exception as err:  # zarr raises several unrelated types for a missing node
        raise StoreError(f"{where}: its reference array '{path}' is missing ({err})") from err
    if encoding_of(ref) is not None:
        raise StoreError(f"{where}: its reference '{path}' is itself encoded")
    return ref


def decoded(group: zarr.Group, name: str, source: str | None = None) -> zarr.Array | DecodedArray:
    """The array ``name`` of ``group`` as its values, read lazily.

    A plain array is returned as it is; one stored relative to a reference
    (``create_array(..., relative=...)``) as a :class:`DecodedArray`, which reads and
    decodes whatever it is indexed with. Either way ``arr[sel]`` and
    ``arr.get_orthogonal_selection(sel)`` give the values that were written, bitwise.

    Raises:
        StoreError: as :func:`require_array` for a missing array or a group.
    """
    node = _require_node(group, name, source)
    spec = encoding_of(node)
    return node if spec is None else DecodedArray(node, spec)


def _selection(key: Any, ndim: int) -> tuple[Any, ...]:
    """``key`` as one entry per axis (int, slice or 1-d int array); at most one array."""
    key = key if isinstance(key, tuple) else (key,)
    if any(k is Ellipsis for k in key):
        at = next(i for i, k in enumerate(key) if k is Ellipsis)
        fill = (slice(None),) * (ndim - len(key) + 1)
        key = (*key[:at], *fill, *key[at + 1 :])
    if len(key) > ndim:
        raise IndexError(f"{len(key)} indices for a {ndim}-d array")
    key = (*key, *(slice(None),) * (ndim - len(key)))
    out: list[Any] = []
    for k in key:
        if isinstance(k, slice | int | np.integer):
            out.append(int(k) if isinstance(k, np.integer) else k)
            continue
        arr = np.asarray(k)
        if arr.ndim != 1 or not np.issubdtype(arr.dtype, np.integer):
            raise IndexError(f"unsupported index {k!r}: int, slice or 1-d int array per axis")
        out.append(arr)
    if sum(isinstance(k, np.ndarray) for k in out) > 1:
        raise IndexError("an integer array index on one axis at most")
    return tuple(out)


class DecodedArray:
    """An array stored relative to a reference (:func:`create_array` ``relative=``), seen
    as its float32 values: index it like the zarr array it stands for.

    Selections: per axis an int, a slice or (on one axis) a 1-d int array, as
    ``arr[sel]`` or ``arr.get_orthogonal_selection(sel)``. Each read fetches the words of
    the selection and the same selection of the reference, and the escape planes only
    where a word is escaped.

    Attributes:
        stored: the zarr array of words and escape planes (n, 3, *rest) uint16.
        encoding: its :class:`Relative`.
    """

    def __init__(self, stored: zarr.Array, encoding: Relative) -> None:
        self.stored = stored
        self.encoding = encoding
        self._reference: zarr.Array | None = None  # opened on the first cache miss

    def reference(self) -> zarr.Array:
        """The reference array (opened once; its shape and dtype checked)."""
        if self._reference is None:
            where = f"{getattr(self.store, 'root', self.store)}/{self.path}"
            ref = _reference_array(self.store, self.encoding.reference, where)
            if tuple(ref.shape) != self.shape or ref.dtype != np.float32:
                raise StoreError(
                    f"{where}: reference '{self.encoding.reference}' is {ref.dtype} "
                    f"{tuple(ref.shape)}, not float32 {self.shape}"
                )
            self._reference = ref
        return self._reference

    @property
    def shape(self) -> tuple[int, ...]:
        return (int(self.stored.shape[0]), *(int(s) for s in self.stored.shape[2:]))

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(np.float32)

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def attrs(self) -> Any:
        return self.stored.attrs

    @property
    def path(self) -> str:
        return self.stored.path

    @property
    def store(self) -> Any:
        return self.stored.store

    def __len__(self) -> int:
        return self.shape[0]

    def __repr__(self) -> str:
        return f"<DecodedArray {self.path} {self.shape} float32, relative to {self.encoding.reference}>"

    def __getitem__(self, key: Any) -> np.ndarray:
        return self.get_orthogonal_selection(key)

    def __array__(self, dtype: Any = None, copy: bool | None = None) -> np.ndarray:
        values = self[...]
        return values if dtype is None else values.astype(dtype)

    def get_orthogonal_selection(self, selection: Any) -> np.ndarray:
        """The values at ``selection`` (one int, slice or 1-d int array per axis)."""
        sel = _selection(selection, self.ndim)
        words = np.asarray(self.stored.get_orthogonal_selection((sel[0], 0, *sel[1:])))
        reference = _reference_values(self, sel)
        planes = None
        escaped = has_escapes(words)
        if escaped:
            planes = np.asarray(
                self.stored.get_orthogonal_selection((sel[0], slice(1, 3), *sel[1:]))
            )
            if not isinstance(sel[0], int):
                planes = np.moveaxis(planes, 1, 0)
        return decode(words, reference, self.encoding, planes, escaped=escaped)


_references: OrderedDict[tuple[Any, ...], np.ndarray] = OrderedDict()
_references_lock = threading.Lock()


def _reference_key(arr: DecodedArray) -> tuple[Any, ...] | None:
    """What identifies the current content of ``arr``'s reference, or None when it is not
    cached (not in a local store, or larger than the cache). Every chunk write of zarr's
    local store replaces its file, so inode, size and mtime of a file change with its data.
    """
    nbytes = int(np.prod(arr.shape)) * 4  # the reference is float32 of the same shape
    if not isinstance(arr.store, LocalStore) or nbytes > _REFERENCE_CACHE_BYTES:
        return None
    root = Path(arr.store.root) / arr.encoding.reference
    files = []
    for f in sorted(p for p in root.rglob("*") if p.is_file()):
        st = f.stat()
        files.append((f.relative_to(root).as_posix(), st.st_ino, st.st_size, st.st_mtime_ns))
    return (str(root.resolve()), tuple(files))


def _reference_values(arr: DecodedArray, sel: tuple[Any, ...]) -> Any:
    """``arr``'s reference at ``sel``, through the per-process cache of whole references:
    the first read of a reference reads all of it, later reads of any array relative to
    it (every set of the attack store) only check that its files are unchanged."""
    key = _reference_key(arr)
    if key is None:
        return arr.reference().get_orthogonal_selection(sel)
    with _references_lock:
        whole = _references.get(key)
        if whole is not None:
            _references.move_to_end(key)
    if whole is None:
        whole = np.asarray(arr.reference()[...])
        whole.flags.writeable = False  # slices of it are handed to the decoder
        with _references_lock:
            _references[key] = whole
            while sum(a.nbytes for a in _references.values()) > _REFERENCE_CACHE_BYTES:
                _references.popitem(last=False)
    return whole[sel]  # at most one array index: numpy's indexing is the orthogonal one


def forget_references() -> None:
    """Empty this process's cache of reference arrays (benchmarks time cold reads)."""
    with _references_lock:
        _references.clear()


# -- resumable outputs ---------------------------------------------------------------


def fingerprint(
    inputs: Iterable[Path | str] = (), params: Any = None, code: Iterable[Path | str] = ()
) -> str:
    """A short hash naming what a resumable output is made from.

    Args:
        inputs: input files or directories. Files up to 1 MiB (metadata such as
            ``zarr.json``, small checkpoints) count by content, larger ones by size and
            modification time (as DVC's own change detection does).
        params: anything JSON-serialisable: the params that change the result.
        code: source files or directories (``*.py`` by content), so a code fix never
            resumes onto shards written by the old code.

    Returns:
        16 hex digits; equal for equal inputs, params and code.
    """
    h = hashlib.sha256()
    for path in inputs:
        h.update(b"\0input\0")
        _hash_tree(h, Path(path), "*")
    h.update(b"\0params\0" + json.dumps(params, sort_keys=True, default=_json_default).encode())
    for path in code:
        h.update(b"\0code\0")
        _hash_tree(h, Path(path), "*.py")
    return h.hexdigest()[:16]


def _hash_tree(h: Any, root: Path, pattern: str) -> None:
    if not root.exists():
        raise StoreError(f"{root}: not found")
    if root.is_file():
        files = [root]
    else:
        files = sorted(
            p for p in root.rglob(pattern) if p.is_file() and "__pycache__" not in p.parts
        )
    for f in files:
        st = f.stat()
        rel = f.name if f == root else f.relative_to(root).as_posix()
        h.update(f"{rel}\0{st.st_size}\0".encode())
        if st.st_size <= _SMALL_FILE or pattern != "*":
            h.update(hashlib.md5(f.read_bytes(), usedforsecurity=False).digest())
        else:
            h.update(str(st.st_mtime_ns).encode())


@dataclass(frozen=True)
class ShardMarkers:
    """Completion markers of one group of shards: ``<root>/<k>.done``.

    Picklable (a path), so worker processes mark the shards they finish.
    """

    root: Path

    def done(self) -> set[int]:
        if not self.root.is_dir():
            return set()
        return {int(p.name.split(".")[0]) for p in self.root.glob("*.done")}

    def pending(self, shards: Iterable[int], desc: str = "shards") -> list[int]:
        """``shards`` not yet complete, in order; logs how many are skipped."""
        shards = list(shards)
        done = self.done()
        todo = [k for k in shards if k not in done]
        if len(todo) < len(shards):
            log.info(
                "%s: resuming, %d of %d shards already complete, skipping them",
                desc,
                len(shards) - len(todo),
                len(shards),
            )
        return todo

    def mark(self, k: int) -> None:
        """Record shard ``k`` complete (call only after all its data is written)."""
        self.root.mkdir(parents=True, exist_ok=True)
        tmp = self.root / f".{k}.done.{os.getpid()}"
        tmp.touch()
        os.replace(tmp, self.root / f"{k}.done")


@dataclass(frozen=True)
class Partial:
    """A resumable output under construction (yielded by :func:`resumable_output`).

    Attributes:
        path: where the stage writes the output (renamed to the final path when done).
        resumed: a killed earlier run with the same fingerprint left work here.
    """

    path: Path
    resumed: bool

    @property
    def _shards(self) -> Path:
        return self.path.parent / "shards"

    def markers(self, key: str = "all") -> ShardMarkers:
        """Markers of one group of shards (one per ``fill_shards`` call in a stage)."""
        return ShardMarkers(self._shards / key)

    def completed(self) -> int:
        """Shards marked complete so far, over all keys."""
        return sum(1 for _ in self._shards.rglob("*.done")) if self._shards.is_dir() else 0

    def group(self, attrs: Mapping[str, Any] | None = None) -> zarr.Group:
        """The output's root zarr group: created, or reopened when resuming."""
        if not (self.path / "zarr.json").is_file():
            return create_group(self.path, attrs)
        try:
            group = zarr.open_group(str(self.path), mode="r+")
        except Exception as err:  # corrupt metadata of a killed run
            raise StoreError(
                f"{self.path}: cannot resume ({err}); delete {self.path.parent} and rerun"
            ) from err
        group.attrs.update({"format": STORE_FORMAT, **(attrs or {})})
        return group


def partial_dir(path: Path | str, fp: str) -> Path:
    """The hidden sibling in which ``path`` with fingerprint ``fp`` is built."""
    path = Path(path)
    return path.with_name(f".{path.name}{_PARTIAL_MARK}{fp}")


@contextlib.contextmanager
def resumable_output(path: Path | str, fp: str) -> Iterator[Partial]:
    """Like :func:`atomic_output`, but a killed run's completed shards are kept.

    The output is built in ``.<name>.partial-<fp>/<name>`` with shard markers beside it.
    On success the markers go and the output is renamed into place; on an exception
    (or SIGKILL) the partial stays for the next run if any shard was completed.
    Partials of other fingerprints are stale and deleted. A second run with the same
    fingerprint while the first is alive fails with :class:`StoreError`.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    clean_stale(path)
    root = partial_dir(path, fp)
    for stale in path.parent.glob(f".{path.name}{_PARTIAL_MARK}*"):
        if stale != root:
            log.info("removing %s: made from other inputs, params or code", stale)
            _remove(stale)
    part = Partial(root / path.name, resumed=(root / "shards").is_dir())
    root.mkdir(exist_ok=True)
    with open(root / "lock", "a") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise StoreError(f"{path}: another run is writing this output right now") from None
        if part.resumed:
            log.info("%s: resuming from %d completed shards in %s", path, part.completed(), root)
        elif part.path.exists():
            _remove(part.path)
        (root / "shards").mkdir(exist_ok=True)
        try:
            yield part
            _commit(part.path, path)
        except BaseException as err:
            why = _no_room(err, part.path)
            kept = part.completed()
            if kept:
                log.warning(
                    "%s: interrupted; %d completed shards kept in %s for the next run",
                    path,
                    kept,
                    root,
                )
            else:
                _remove(root)
            if why is not None:
                raise StoreError(
                    f"{path}: {why} while writing it; nothing was written"
                    f"{', the previous one is unchanged' if path.exists() else ''}"
                    f"{f' ({kept} completed shards kept for the rerun)' if kept else ''}. "
                    "Free some space there and run again"
                ) from err
            raise
    _remove(root)
