"""Disk full in the middle of a stage's write: one clear error naming the output, exit 2,
nothing half-written, the previous artifact intact, and the same command completes once
there is room again.

The disk is a small tmpfs mounted for the test (root, as on the project's machines and
CI), filled with a ballast file until the stage's output no longer fits. Where mounting
is not permitted, the stage runs under ``RLIMIT_FSIZE`` instead (any file it writes may
not exceed a few KiB: the write fails with EFBIG, the per-process twin of ENOSPC), and
"freeing space" is running it without the limit. The test names the mechanism it used.

Two stages, two writers: ``dataset`` fills a zarr store (zarr raises ``OSError``
ENOSPC), ``train`` writes its checkpoint with ``torch.save`` (which reports a failed
write as a bare ``RuntimeError``: :func:`advinterp.store.atomic_output` recognises the
full disk under it).
"""

from __future__ import annotations

import hashlib
import logging
import os
import resource
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.faults.conftest import run_stage
from tests.stages.stage_world import declared

log = logging.getLogger(__name__)
DISK_BYTES = 4 << 20  # the tmpfs: room for the tiny artifacts, with some to spare


@dataclass
class SmallDisk:
    """Where the stage writes, and how this test makes it run out of room."""

    root: Path
    mechanism: str  # "tmpfs" or "rlimit"
    limit: int | None = None  # RLIMIT_FSIZE for the stage (rlimit), None = no limit
    ballast: Path | None = None

    def fill(self, output: Path) -> None:
        """Leave room for about half of ``output``: its next write starts, then fails."""
        files = [output] if output.is_file() else [p for p in output.rglob("*") if p.is_file()]
        if self.mechanism == "rlimit":  # the limit is per file: half the largest one
            self.limit = max(p.stat().st_size for p in files) // 2
            return
        st = os.statvfs(self.root)
        free = st.f_bavail * st.f_frsize
        self.ballast = self.root / "ballast"
        with open(self.ballast, "wb") as f:
            # tmpfs allocates whole pages: count what the files really take
            used = sum(p.stat().st_blocks * 512 for p in files)
            f.write(b"\0" * max(0, free - used // 2))
            f.flush()
            os.fsync(f.fileno())

    def free(self) -> None:
        self.limit = None
        if self.ballast is not None:
            self.ballast.unlink()
            self.ballast = None


@pytest.fixture
def small_disk(tmp_path) -> Iterator[SmallDisk]:
    mnt = tmp_path / "disk"
    mnt.mkdir()
    mount = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={DISK_BYTES}", "tmpfs", str(mnt)],
        capture_output=True,
        text=True,
    )
    if mount.returncode != 0:  # not root, or no CAP_SYS_ADMIN (a container): the fallback
        yield SmallDisk(mnt, "rlimit")
        return
    try:
        yield SmallDisk(mnt, "tmpfs")
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def _run_stage(
    disk: SmallDisk, stage: str, params: Path, paths: dict[str, Path]
) -> subprocess.CompletedProcess:
    limit = disk.limit

    def limited() -> None:  # in the stage's process only
        if limit is not None:
            resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return run_stage(stage, params, paths, preexec_fn=limited)


def _tree(path: Path) -> dict[str, str]:
    """Every file under ``path`` (or ``path`` itself) -> md5 of its bytes."""
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    return {
        p.relative_to(path.parent).as_posix(): hashlib.md5(
            p.read_bytes(), usedforsecurity=False
        ).hexdigest()
        for p in files
    }


# stage -> (the output that fills the disk, flag -> its file name on the small disk)
CASES = {
    "dataset": ("out", {"out": "dataset.zarr"}),  # zarr through atomic_output
    "train": ("model", {"model": "model.pt", "metrics": "metrics.json", "history": "history.csv"}),
    "features": ("out", {"out": "clean.zarr"}),  # zarr shards through resumable_output
}


@pytest.mark.parametrize("stage", sorted(CASES))
def test_disk_full_midway_names_the_output_and_keeps_the_previous_one(
    small_disk, tiny_dataset, inputs, stage
):
    params, dataset = tiny_dataset
    big, outs = CASES[stage]
    paths = {flag: small_disk.root / name for flag, name in outs.items()}
    given = {"dataset": dataset, "images": inputs / "images.zarr", "model": inputs / "model.pt"}
    s = declared(stage)
    reads = {flag: given[flag] for flag in s.inputs if flag not in s.optional}  # run_stage: "-"
    every = {**reads, **paths}

    first = _run_stage(small_disk, stage, params, every)
    assert first.returncode == 0, first.stderr[-3000:]
    before = {flag: _tree(p) for flag, p in paths.items()}

    small_disk.fill(paths[big])
    full = _run_stage(small_disk, stage, params, every)
    log.info("disk full by %s: %s", small_disk.mechanism, full.stderr.strip().splitlines()[-1])
    assert full.returncode == 2, full.stderr[-3000:]
    assert "Traceback" not in full.stderr, full.stderr[-3000:]
    error = full.stderr.strip().splitlines()[-1]
    assert " ERROR advinterp.stage: " in error, full.stderr[-3000:]
    assert f"{paths[big]}: " in error, error
    expected = "File too large" if small_disk.mechanism == "rlimit" else "No space left on device"
    assert expected in error, error
    assert "the previous one is unchanged" in error and "Free some space" in error, error
    # No partial output: every output is the previous run's, byte for byte. Nothing
    # hidden is left taking space either (a .<name>.tmp-<pid> sibling), except the
    # completed shards of a resumable stage, kept on purpose and said so.
    assert {flag: _tree(p) for flag, p in paths.items()} == before
    left = sorted(p.name for p in small_disk.root.iterdir())
    partial = [name for name in left if ".partial-" in name]
    expected_left = [*outs.values(), *(["ballast"] if small_disk.ballast else [])]
    assert sorted(set(left) - set(partial)) == sorted(expected_left)
    kept = int(error.split(" completed shards kept")[0].rsplit("(", 1)[1]) if partial else 0
    assert bool(partial) == ("completed shards kept for the rerun" in error), (left, error)

    small_disk.free()
    again = _run_stage(small_disk, stage, params, every)
    assert again.returncode == 0, again.stderr[-3000:]
    if kept:
        assert f"resuming, {kept} of " in again.stderr, again.stderr[-3000:]
    # The same command, the same bytes (the stages are deterministic on CPU, 1 thread).
    assert {flag: _tree(p) for flag, p in paths.items()} == before
    assert sorted(p.name for p in small_disk.root.iterdir()) == sorted(outs.values())
