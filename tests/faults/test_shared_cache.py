"""Two clones sharing one DVC cache directory run ``dvc repro`` at the same time.

The setup is DVC's "shared development server" recipe: ``dvc cache dir <shared>`` and
``dvc config cache.shared group`` in each clone (``--local``), with a link type per
workspace: clone a ``symlink`` (its outputs link into the shared cache, nothing is
copied), clone b ``copy`` (its own bytes). Each clone has its own workspace lock;
nothing locks the shared cache across clones, so the two runs add the same objects (and
run-cache entries) concurrently.

What holds: both runs complete, their outputs equal a solo run's byte for byte, every
object in the shared cache hashes to its name (``flows.verify``), and a third clone
that only checks out from the shared cache is complete and reruns nothing. The
push/pull route through a remote is ``tests/stages/test_cache_sharing.py``.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from flows.verify import recorded_outputs, verify
from tests.conftest import pipeline_env, run
from tests.stages.test_cache_sharing import _ran

DVC = [sys.executable, "-m", "dvc"]
TARGET = "train"  # dataset -> train: a zarr directory, a checkpoint, metrics and a CSV


def _clone(origin: Path, dest: Path, cache: Path | None, link: str | None) -> Path:
    subprocess.run(["git", "clone", "-q", str(origin), str(dest)], check=True)
    if cache is not None:
        run([*DVC, "cache", "dir", "--local", str(cache)], dest)
        run([*DVC, "config", "--local", "cache.shared", "group"], dest)
    if link is not None:
        run([*DVC, "config", "--local", "cache.type", link], dest)
    return dest


def _outs(repo: Path) -> dict[str, str]:
    """Every output dvc.lock records for the default profile's stages -> its hash."""
    lock = yaml.safe_load((repo / "dvc.lock").read_text())
    return {
        out["path"]: out["md5"]
        for stage in lock["stages"].values()
        for out in stage.get("outs", [])
    }


def _bytes(repo: Path, outs: dict[str, str]) -> dict[str, bytes]:
    """The bytes of every file of ``outs`` (following symlinks into the cache)."""
    found = {}
    for path in outs:
        p = repo / path
        files = [p] if p.is_file() else sorted(f for f in p.rglob("*") if f.is_file())
        for f in files:
            found[f.relative_to(repo).as_posix()] = f.read_bytes()
    return found


@pytest.mark.slow
def test_two_clones_repro_at_once_into_one_shared_cache(pipeline_repo, tmp_path):
    origin = pipeline_repo
    alone = _clone(origin, tmp_path / "solo", None, None)  # its own cache
    run([*DVC, "repro", TARGET], alone)
    solo_outs = _outs(alone)
    solo_bytes = _bytes(alone, solo_outs)

    # Clone a links its workspace into the shared cache, clone b copies out of it.
    shared = tmp_path / "shared-cache"
    a = _clone(origin, tmp_path / "a", shared, "symlink")
    b = _clone(origin, tmp_path / "b", shared, "copy")
    procs = [
        subprocess.Popen(
            [*DVC, "repro", TARGET],
            cwd=repo,
            env=pipeline_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for repo in (a, b)
    ]
    outputs = [p.communicate(timeout=600)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    # Each ran the stages or took them from the other's run-cache entries.
    for out in outputs:
        assert _ran(out) or "is cached - skipping run" in out, out

    for repo in (a, b):
        assert _outs(repo) == solo_outs  # dvc.lock records the solo run's hashes
        assert _bytes(repo, solo_outs) == solo_bytes  # and the files hold those bytes
        assert "up to date" in run([*DVC, "status", TARGET], repo).stdout
    model = Path("artifacts/train/model.pt")
    assert (a / model).is_symlink() and shared in (a / model).resolve().parents
    assert not (b / model).is_symlink()

    # The shared cache is consistent: every object both runs wrote hashes to its name,
    # and no temporary file of either run is left in it.
    records = [r for recs in recorded_outputs(a).values() for r in recs]
    assert records and verify(records) == []
    objects = [p for p in (shared / "files" / "md5").rglob("*") if p.is_file()]
    assert objects and all(
        len(p.parent.name) == 2 and "." not in p.name.removesuffix(".dir") for p in objects
    )

    # Clone a commits its results; a third clone of that commit checks every output
    # out of the shared cache alone (no remote) and has nothing left to run.
    run(["git", "add", "-A"], a)
    run(["git", "commit", "-qm", "results"], a)
    c = _clone(a, tmp_path / "c", shared, "copy")
    run([*DVC, "checkout", "--with-deps", TARGET], c)
    assert _bytes(c, solo_outs) == solo_bytes
    again = run([*DVC, "repro", TARGET], c)
    assert _ran(again.stdout) == [], again.stdout
    metrics = json.loads((c / "artifacts" / "train" / "metrics.json").read_text())
    assert metrics == json.loads(solo_bytes["artifacts/train/metrics.json"])
