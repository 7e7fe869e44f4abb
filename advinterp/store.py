"""All reading and writing of artifacts: zarr v3 stores, JSON tables, atomic commits.

Layout rule: every per-sample array is chunked along axis 0 and stored with zarr's
sharding codec, one shard per ``chunk_size`` samples. A shard is the unit of
streaming and of parallel work, so workers writing different shards never touch the
same file, and a store holds few files (DVC slows down on directories of 10^4+
small files). Every array records its dims, range and the params that made it.

Atomicity rule: a stage writes each output into a temporary sibling and renames it
into place only when complete, so a failed or killed stage leaves no half-written
artifact behind.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import zarr
from zarr.codecs import BloscCodec

from advinterp.errors import StoreError

log = logging.getLogger(__name__)

STORE_FORMAT = "advinterp-store/1"
_INNER_CHUNK_MAX = 16
_TMP_MARK = ".tmp-"


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


@contextlib.contextmanager
def atomic_output(path: Path | str) -> Iterator[Path]:
    """Yield a temporary sibling of ``path``; move it into place only on success.

    On an exception the temporary is deleted and whatever was at ``path`` before is
    left untouched. A SIGKILL leaves only a hidden ``.<name>.tmp-<pid>`` sibling, which
    the next run removes.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    clean_stale(path)
    tmp = _tmp_sibling(path)
    try:
        yield tmp
    except BaseException:
        if tmp.exists():
            _remove(tmp)
        raise
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
    rest = tuple(max(s, 1) for s in shape[1:])
    inner = _inner_chunk(chunk_size)
    arr = group.create_array(
        name,
        shape=shape,
        dtype=dtype,
        chunks=(inner, *rest),
        shards=(chunk_size, *rest),
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
        if name not in group:
            raise StoreError(f"{path}: missing array '{name}'")
        if group[name].ndim != ndim:
            raise StoreError(f"{path}/{name}: expected {ndim} dims, found {group[name].ndim}")
    return group


def shard_slices(n: int, chunk_size: int) -> list[slice]:
    """The sample ranges of the shards of an ``n``-sample array (the unit of work)."""
    return [slice(s, min(s + chunk_size, n)) for s in range(0, n, chunk_size)]


def sample_chunk_size(arr: zarr.Array) -> int:
    """Samples per shard of an existing array (the granularity for aligned writes)."""
    shards = arr.shards
    return int(shards[0] if shards is not None else arr.chunks[0])


def fill_shards(
    outputs: Mapping[str, zarr.Array],
    compute: Any,
    n: int,
    chunk_size: int,
    desc: str = "shards",
    shards: list[int] | None = None,
) -> None:
    """Fill per-sample ``outputs`` shard by shard: ``compute(slice) -> {name: array}``.

    Each call covers exactly one storage shard, so writes are shard-aligned: separate
    processes filling different ``shards`` never write the same file.
    """
    from advinterp.progress import track  # local: progress is optional machinery

    slices = shard_slices(n, chunk_size)
    todo = range(len(slices)) if shards is None else shards
    for k in track(todo, total=len(todo), desc=desc, unit="shard"):
        result = compute(slices[k])
        for name, arr in outputs.items():
            arr[slices[k]] = result[name]
