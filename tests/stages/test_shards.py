"""stages.shards: Dask fan-out equals the single-process run; killed runs resume.

The stage runs are real ``python -m stages.features`` subprocesses on a tiny images
store (40 images in 5 shards of 8) and a small real classifier.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
import zarr

from advinterp.config import ScaleConfig
from advinterp.models.checkpoint import save_classifier
from advinterp.models.classifier import build_classifier
from advinterp.store import (
    atomic_output,
    create_array,
    create_group,
    open_store,
    write_array,
)
from stages.shards import DELAY_ENV, ShardJob, run_shards
from tests.conftest import ROOT, pipeline_env, run

N, SIZE, CHUNK = 40, 32, 8
SHARDS = N // CHUNK


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> Path:
    """A tiny images store and classifier checkpoint."""
    d = tmp_path_factory.mktemp("shards")
    torch.manual_seed(0)
    save_classifier(d / "model.pt", build_classifier("tiny_resnet", 4, (0.5,) * 3, (0.25,) * 3))
    images = np.random.default_rng(0).random((N, 3, SIZE, SIZE), dtype=np.float32)
    with atomic_output(d / "images.zarr") as tmp:
        write_array(
            create_group(tmp), "images", images, dims=("sample", "c", "y", "x"), chunk_size=CHUNK
        )
    return d


def _params(d: Path, name: str, scale: dict) -> Path:
    path = d / f"{name}.yaml"
    params = {
        "base": {"device": "cpu", "num_threads": 1},
        "features": {"batch_size": 16},
        "scale": scale,
    }
    path.write_text(yaml.safe_dump(params))
    return path


def _features_cmd(d: Path, params: Path, out: Path) -> list[str]:
    return [
        sys.executable,
        "-m",
        "stages.features",
        "--params",
        str(params),
        "--images",
        str(d / "images.zarr"),
        "--model",
        str(d / "model.pt"),
        "--out",
        str(out),
    ]


def _env(d: Path, **extra: str) -> dict[str, str]:
    env = pipeline_env()
    # A private Prefect database, shared by this module's runs (migrated once).
    env["PREFECT_HOME"] = str(d.parent / "prefect-home")
    env["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
    env.pop("PREFECT_API_URL", None)
    env.pop(DELAY_ENV, None)
    env.update(extra)
    return env


def _run_features(d: Path, params: Path, out: Path, **env: str) -> subprocess.CompletedProcess:
    proc = subprocess.run(
        _features_cmd(d, params, out),
        cwd=ROOT,
        env=_env(d, **env),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


@pytest.fixture(scope="module")
def reference(inputs) -> dict[str, np.ndarray]:
    """The uninterrupted single-process run."""
    out = inputs / "local.zarr"
    _run_features(inputs, _params(inputs, "local", {"executor": "local"}), out)
    store = open_store(out, {"features": 2, "logits": 2})
    return {"features": store["features"][:], "logits": store["logits"][:]}


def _assert_same(out: Path, reference: dict[str, np.ndarray]) -> None:
    store = open_store(out, {"features": 2, "logits": 2})
    for name, expected in reference.items():
        # Bitwise: the same compute on the same shard boundaries, 1 torch thread each.
        np.testing.assert_array_equal(store[name][:], expected, err_msg=name)


def test_features_on_two_dask_workers_equal_the_local_run(inputs, reference):
    out = inputs / "dask.zarr"
    params = _params(inputs, "dask", {"executor": "dask", "workers": 2})
    proc = _run_features(inputs, params, out)
    _assert_same(out, reference)
    assert f"features: {SHARDS} shards done by 2 worker processes" in proc.stderr
    assert sorted(p.name for p in inputs.iterdir() if p.name.startswith(".")) == []
    assert _processes_with_env(f"PREFECT_HOME={inputs.parent / 'prefect-home'}") == [], (
        "a Dask worker or temporary Prefect server outlived the stage"
    )


def _processes_with_env(entry: str) -> list[int]:
    """Live processes whose environment holds ``entry`` (Linux /proc)."""
    found = []
    for environ in Path("/proc").glob("[0-9]*/environ"):
        try:
            if entry.encode() in environ.read_bytes().split(b"\0"):
                found.append(int(environ.parent.name))
        except OSError:
            continue
    return found


@pytest.fixture(scope="module")
def chain_inputs(tmp_path_factory) -> Path:
    """A tiny synthetic dataset (16 test images), a classifier and one robust model."""
    from advinterp.config import SyntheticConfig
    from advinterp.data.artifact import write_dataset
    from advinterp.data.synthetic import generate

    d = tmp_path_factory.mktemp("chain")
    cfg = SyntheticConfig(num_classes=4, images_per_class=8, families=2, clutter=1)
    ds = generate(cfg, SIZE, seed=0, val_fraction=0.0, test_fraction=0.5)
    write_dataset(d / "dataset.zarr", ds.index, ds, CHUNK, {})
    torch.manual_seed(0)
    save_classifier(d / "model.pt", build_classifier("tiny_resnet", 4, (0.5,) * 3, (0.25,) * 3))
    (d / "robust").mkdir()
    robust = build_classifier("tiny_resnet", 4, (0.5,) * 3, (0.25,) * 3)
    save_classifier(d / "robust" / "at_0.06.pt", robust, train_eps=0.06)
    return d


def _run_attack(d: Path, name: str, scale: dict) -> subprocess.CompletedProcess:
    params = d / f"{name}.yaml"
    params.write_text(
        yaml.safe_dump(
            {
                "base": {"device": "cpu", "num_threads": 1, "chunk_size": CHUNK, "seed": 0},
                "attack": {"eps": [0.03, 0.06], "steps": 2, "max_images": None, "batch_size": 8},
                "scale": scale,
            }
        )
    )
    cmd = [sys.executable, "-m", "stages.attack", "--params", str(params)]
    cmd += ["--dataset", str(d / "dataset.zarr"), "--model", str(d / "model.pt")]
    cmd += ["--robust", str(d / "robust"), "--out", str(d / f"{name}.zarr")]
    cmd += ["--metrics", str(d / f"{name}.json")]
    proc = subprocess.run(cmd, cwd=ROOT, env=_env(d), capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def test_attack_on_two_dask_workers_equals_the_local_run(chain_inputs):
    d = chain_inputs
    _run_attack(d, "local", {"executor": "local"})
    proc = _run_attack(d, "dask", {"executor": "dask", "workers": 2})
    # Both models' shards went through one cluster (one session for the stage).
    assert proc.stderr.count("Dask LocalCluster of 2 workers") == 1
    assert proc.stderr.count("shards done by") == 2
    local, dask = open_store(d / "local.zarr"), open_store(d / "dask.zarr")
    arrays = [k for k, v in local.members(max_depth=None) if isinstance(v, zarr.Array)]
    assert len(arrays) == 3 + 2 * (1 + 2 * 2 * 3)  # rows/labels/targets + per model
    for name in arrays:
        np.testing.assert_array_equal(dask[name][:], local[name][:], err_msg=name)
    assert (d / "local.json").read_text() == (d / "dask.json").read_text()
    assert _processes_with_env(f"PREFECT_HOME={d.parent / 'prefect-home'}") == []


def _wait_for_markers(shards_dir_glob, at_least: int, proc, timeout: float = 300) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done = len(list(shards_dir_glob()))
        if done >= at_least:
            return done
        assert proc.poll() is None, "the run ended before it could be killed"
        time.sleep(0.05)
    raise AssertionError("no shard completed in time")


def test_killed_features_run_resumes_from_completed_shards(inputs, reference):
    out = inputs / "resumed.zarr"
    # A previous artifact at the output path must survive the kill.
    write_array(create_group(out), "old", np.arange(3), dims=("sample",), chunk_size=2)
    params = _params(inputs, "kill", {"executor": "local"})
    proc = subprocess.Popen(
        _features_cmd(inputs, params, out),
        cwd=ROOT,
        env=_env(inputs, **{DELAY_ENV: "0.5"}),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_for_markers(lambda: inputs.glob(".resumed.zarr.partial-*/shards/*/*.done"), 2, proc)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()
    done = len(list(inputs.glob(".resumed.zarr.partial-*/shards/*/*.done")))
    assert 2 <= done < SHARDS
    assert sorted(open_store(out).array_keys()) == ["old"], "previous artifact was touched"

    rerun = _run_features(inputs, params, out)
    assert f"resuming, {done} of {SHARDS} shards already complete" in rerun.stderr
    _assert_same(out, reference)
    assert not list(inputs.glob(".resumed.zarr.*")), "partial left after success"


# -- ShardJob and run_shards in-process ----------------------------------------------------

SETUP_CALLS: list[tuple] = []


def doubling_setup(offset: int):
    """A module-level shard setup (what workers import by name)."""
    SETUP_CALLS.append((offset,))

    def compute(sl: slice) -> dict[str, np.ndarray]:
        return {"y": np.arange(sl.start, sl.stop) * 2 + offset}

    return compute


def test_shard_job_names_its_setup_and_runs_it_once_per_process():
    job = ShardJob.of(doubling_setup, 5)
    assert job.setup == "tests.stages.test_shards:doubling_setup"
    SETUP_CALLS.clear()
    assert job.compute() is job.compute()
    assert SETUP_CALLS == [(5,)]
    assert ShardJob.of(doubling_setup, 6).token != job.token

    def nested(offset: int):
        return doubling_setup(offset)

    with pytest.raises(ValueError, match="module-level"):
        ShardJob.of(nested, 1)


def test_run_shards_local_skips_marked_shards(tmp_path):
    from advinterp.store import ShardMarkers

    out = create_array(
        create_group(tmp_path / "o.zarr"), "y", (10,), "int64", dims=("s",), chunk_size=4
    )
    markers = ShardMarkers(tmp_path / "m")
    markers.mark(0)  # shard 0 "done" (left as zeros to prove it is not recomputed)
    run_shards(
        {"y": out},
        ShardJob.of(doubling_setup, 1),
        10,
        4,
        scale=ScaleConfig(),
        markers=markers,
    )
    np.testing.assert_array_equal(out[:], [0, 0, 0, 0, 9, 11, 13, 15, 17, 19])
    assert markers.done() == {0, 1, 2}


# -- through DVC: the partial survives DVC deleting the stage's outs -------------------------


def _ran(output: str) -> set[str]:
    return {line.split("'")[1] for line in output.splitlines() if line.startswith("Running stage")}


@pytest.mark.slow
def test_dvc_repro_after_a_kill_resumes_the_features_stage(pipeline_repo):
    dvc = [sys.executable, "-m", "dvc"]
    run([*dvc, "repro", "train"], pipeline_repo)
    feats = pipeline_repo / "artifacts" / "features"
    markers = lambda: feats.glob(".clean.zarr.partial-*/shards/*/*.done")  # noqa: E731
    proc = subprocess.Popen(
        [*dvc, "repro", "features"],
        cwd=pipeline_repo,
        env={**pipeline_env(), DELAY_ENV: "1.0"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # kill dvc and the stage together, like a killed job
    )
    try:
        _wait_for_markers(markers, 2, proc)
        os.killpg(proc.pid, signal.SIGKILL)
    finally:
        proc.wait()
    done = len(list(markers()))
    assert 2 <= done < SHARDS
    assert not (feats / "clean.zarr").exists()

    resumed = run([*dvc, "repro", "features"], pipeline_repo)
    assert _ran(resumed.stdout) == {"features"}, resumed.stdout
    assert f"resuming, {done} of {SHARDS} shards already complete" in resumed.stderr
    got = open_store(feats / "clean.zarr", {"features": 2, "logits": 2})
    got = {k: got[k][:] for k in ("features", "logits")}
    assert not list(feats.glob(".clean.zarr.*"))
    assert "up to date" in run([*dvc, "status", "features"], pipeline_repo).stdout

    forced = run([*dvc, "repro", "--force", "--single-item", "features"], pipeline_repo)
    assert "resuming" not in forced.stderr
    _assert_same(feats / "clean.zarr", got)
