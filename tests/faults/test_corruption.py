"""Damaged bytes are caught before a stage computes from them: a truncated zarr chunk in
an artifact, and one flipped byte in a DVC cache object.

What each layer does (DVC 3.67, dvc-data 3.18, zarr 3.1):

- zarr reads a truncated blosc chunk with a bare ``RuntimeError`` (no path), and a
  sharded array whose shard file was cut to 0 bytes as fill values, silently.
  :func:`advinterp.store.open_store` now checks every chunk file's blosc header and
  shard index (CRC32C) first: a ``StoreError`` naming the file, exit 2 in a stage.
- DVC notices a truncated file in the workspace (size changed: ``dvc status`` says
  modified, ``dvc repro`` restores it from the cache), but not a damaged cache object:
  ``dvc checkout``, and ``dvc repro`` restoring from its run cache, copy it into the
  workspace without re-hashing it, and ``dvc status`` stays clean. A flipped byte
  inside compressed data keeps the blosc frame whole, so the store's check cannot see it
  either (zarr decodes it into a different pixel). ``python -m flows.verify`` re-hashes
  the bytes and names both files.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
import zarr

from advinterp.errors import StoreError
from advinterp.store import atomic_output, create_group, open_store, write_array
from tests.conftest import run
from tests.faults.conftest import run_stage
from tests.stages.stage_world import declared

DVC = [sys.executable, "-m", "dvc"]
DATASET = declared("dataset").outputs["out"].path
CHUNK = "images/c.1.0.0.0"  # the second shard of the dataset's images


def verify(capsys, repo: Path, *args: str) -> tuple[int, list[str]]:
    """``python -m flows.verify --repo <repo> *args`` (in this process): exit code and the
    lines naming damage."""
    from flows.verify import main

    capsys.readouterr()
    code = main(["--repo", str(repo), *args])
    return code, capsys.readouterr().err.strip().splitlines()


def md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes(), usedforsecurity=False).hexdigest()


def truncate(path: Path, size: int) -> None:
    path.chmod(0o644)
    with open(path, "r+b") as f:
        f.truncate(size)


def flip_byte(path: Path, offset: int) -> None:
    """Flip one bit of ``path`` at ``offset``, keeping its size, mode and mtime (bit rot)."""
    st = path.stat()
    path.chmod(0o644)
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x01
    path.write_bytes(bytes(data))
    path.chmod(st.st_mode)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))


def test_truncated_chunks_are_refused_before_anything_reads_them(tmp_path):
    """Plain chunks and shards, cut anywhere: open_store names the file."""
    rng = np.random.default_rng(0)
    small = rng.random((24, 3, 8, 8), dtype=np.float32)  # one plain chunk a shard
    big = rng.random((64, 3, 64, 64), dtype=np.float32)  # shards of inner chunks + index
    good = tmp_path / "good.zarr"
    with atomic_output(good) as tmp:
        group = create_group(tmp)
        write_array(group, "small", small, dims=("s", "c", "y", "x"), chunk_size=8)
        write_array(group, "big", big, dims=("s", "c", "y", "x"), chunk_size=32)
    assert open_store(good)["big"].shards is not None, "the test needs a sharded array"

    cuts = {"empty": lambda n: 0, "half": lambda n: n // 2, "last byte": lambda n: n - 1}
    for name in ("small", "big"):
        for what, keep in cuts.items():
            bad = tmp_path / f"{name}-{what.replace(' ', '-')}.zarr"
            shutil.copytree(good, bad)
            chunk = bad / name / "c.1.0.0.0"
            truncate(chunk, keep(chunk.stat().st_size))
            with pytest.raises(StoreError, match=f"{bad}/{name}/c.1.0.0.0: damaged chunk"):
                open_store(bad)

    # Why the check: zarr alone reads an emptied shard as zeros, silently.
    bad = tmp_path / "big-empty.zarr"
    silently = zarr.open_array(str(bad / "big"), mode="r")[...]
    assert (silently[32:] == 0).all() and not np.array_equal(silently, big)


def test_a_stage_given_a_truncated_chunk_stops_before_computing(tiny_dataset, tmp_path):
    params, good = tiny_dataset
    bad = tmp_path / "dataset.zarr"
    shutil.copytree(good, bad)
    truncate(bad / CHUNK, (bad / CHUNK).stat().st_size // 2)
    out = tmp_path / "out"
    train = declared("train")
    paths = {"dataset": bad, **{f: out / Path(o.path).name for f, o in train.outputs.items()}}
    proc = run_stage("train", params, paths)
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr
    error = proc.stderr.strip().splitlines()[-1]
    assert f" ERROR advinterp.stage: {bad}/{CHUNK}: damaged chunk of 'images'" in error, error
    assert not out.exists() or list(out.iterdir()) == []


@pytest.mark.slow
def test_flipped_byte_in_a_dvc_cache_object_is_named_before_use(pipeline_repo, capsys):
    repo = pipeline_repo
    run([*DVC, "repro", "dataset"], repo)
    chunk = repo / DATASET / CHUNK
    good = md5(chunk)
    cache = repo / ".dvc" / "cache" / "files" / "md5"
    obj = cache / good[:2] / good[2:]
    assert obj.is_file() and (obj.stat().st_mode & 0o777) == 0o444

    flip_byte(obj, 1000)  # inside the compressed pixels: the blosc frame stays whole
    code, lines = verify(capsys, repo, "--no-workspace")
    assert code == 1 and lines == [
        f"DAMAGED .dvc/cache/files/md5/{good[:2]}/{good[2:]}: DVC cache object of "
        f"{DATASET}/{CHUNK} (stage 'dataset') damaged: its bytes no longer hash to its "
        "name; delete it, then `dvc repro dataset` (or `dvc pull`) rewrites it"
    ], lines

    # What DVC 3 does with it: checkout copies it without re-hashing, status stays clean.
    shutil.rmtree(repo / DATASET)
    run([*DVC, "checkout", "dataset"], repo)
    assert md5(chunk) != good, "DVC now verifies cache objects on checkout: update the docs"
    assert "up to date" in run([*DVC, "status", "dataset"], repo).stdout
    shutil.rmtree(repo / DATASET)  # and so does `dvc repro`, restoring from its run cache
    restored = run([*DVC, "repro", "dataset"], repo)
    assert "is cached - skipping run" in restored.stdout, restored.stdout
    assert md5(chunk) != good
    open_store(repo / DATASET)  # whole frames: only the hashes can tell
    code, lines = verify(capsys, repo, DATASET)
    assert code == 1
    damaged = {line.split(": ")[0] for line in lines}
    assert damaged == {
        f"DAMAGED .dvc/cache/files/md5/{good[:2]}/{good[2:]}",
        f"DAMAGED {DATASET}/{CHUNK}",
    }
    assert "its DVC cache object is damaged too: delete that object" in lines[-1]

    # The advice works: the stage reruns and writes the same bytes again.
    obj.unlink()
    shutil.rmtree(repo / DATASET)
    rerun = run([*DVC, "repro", "dataset"], repo)
    assert "Running stage 'dataset'" in rerun.stdout, rerun.stdout
    assert md5(chunk) == md5(obj) == good
    assert verify(capsys, repo) == (0, [])

    # A truncated workspace file is DVC's to see (its size changed): status says
    # modified, and repro restores the cached bytes instead of running on it.
    truncate(chunk, chunk.stat().st_size // 2)
    assert "modified:" in run([*DVC, "status", "dataset"], repo).stdout
    restored = run([*DVC, "repro", "dataset"], repo)
    assert "Running stage" not in restored.stdout, restored.stdout
    assert md5(chunk) == good
