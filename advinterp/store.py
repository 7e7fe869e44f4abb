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
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import logging
import os
import resource
import shutil
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
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


def create_array(
    group: zarr.Group,
    name: str,
    shape: tuple[int, ...],
    dtype: Any,
    *,
    dims: tuple[str, ...],
    chunk_size: int,
    attrs: Mapping[str, Any] | None = None,
) -> zarr.Array:
    """Create a per-sample array sharded along axis 0 (``chunk_size`` samples a shard).

    Args:
        dims: one name per axis, e.g. ``("sample", "channel", "y", "x")``.
        attrs: units/range and provenance, stored with the array.
    """
    if len(dims) != len(shape):
        raise ValueError(f"{name}: {len(dims)} dims for a {len(shape)}-d shape")
    if name in group:
        # A resumed run (resumable_output) meets the arrays it created before it was
        # killed: reopen them, keeping the shards already written.
        arr = group[name]
        if (
            not isinstance(arr, zarr.Array)
            or tuple(arr.shape) != tuple(shape)
            or arr.dtype != np.dtype(dtype)
            or sample_chunk_size(arr) != chunk_size
        ):
            raise StoreError(f"{group.store}/{arr.path}: exists with a different layout")
        arr.attrs.update({"dims": list(dims), **(attrs or {})})
        return arr
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
) -> zarr.Array:
    """Create an array like ``create_array`` and fill it with ``data`` in one go."""
    data = np.asarray(data)
    arr = create_array(
        group, name, data.shape, data.dtype, dims=dims, chunk_size=chunk_size, attrs=attrs
    )
    if data.size:
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
        arr = require_array(group, name, str(path))
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
        chunk_dir = root / node.path / "c"
        if inner is None or not chunk_dir.is_dir():
            continue
        raw = int(np.prod(node.chunks)) * node.dtype.itemsize
        for file in sorted(p for p in chunk_dir.rglob("*") if p.is_file()):
            problem = _chunk_file_problem(file, inner, raw)
            if problem is not None:
                rel = file.relative_to(root).as_posix()
                raise StoreError(
                    f"{where}/{rel}: damaged chunk of '{name}' ({problem}); restore the "
                    "artifact (dvc checkout, or rerun the stage that writes it)"
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


def require_array(group: zarr.Group, name: str, source: str | None = None) -> zarr.Array:
    """The array ``name`` of ``group`` (zarr types ``group[name]`` as array or group).

    Args:
        source: names the store in errors (default: the group's directory).

    Raises:
        StoreError: naming the store and ``name`` when there is no such member or it
            is a group.
    """
    where = _where(group) if source is None else source
    if name not in group:
        raise StoreError(f"{where}: missing array '{name}'")
    node = group[name]
    if not isinstance(node, zarr.Array):
        raise StoreError(f"{where}/{name}: expected an array, found a group")
    return node


def read_array(group: zarr.Group, name: str, source: str | None = None) -> np.ndarray:
    """All of the array ``name`` of ``group`` in memory (checked as :func:`require_array`)."""
    return np.asarray(require_array(group, name, source)[...])


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


def sample_chunk_size(arr: zarr.Array) -> int:
    """Samples per shard of an existing array (the granularity for aligned writes)."""
    shards = arr.shards
    return int(shards[0] if shards is not None else arr.chunks[0])


def write_shard(outputs: Mapping[str, zarr.Array], result: Mapping[str, Any], sl: slice) -> None:
    """Write one shard's ``result`` (name -> array of ``sl``'s length) into ``outputs``."""
    for name, arr in outputs.items():
        data = np.asarray(result[name])
        if data.shape[:1] != (sl.stop - sl.start,):
            raise ValueError(f"{name}: shard {sl} got {data.shape[0]} samples")
        arr[sl] = data


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
