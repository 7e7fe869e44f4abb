"""advinterp.shards: Dask fan-out equals the single-process run; killed runs resume.

The stage runs are real ``python -m stages.<name>`` subprocesses: ``features`` on a tiny
images store (40 images in 5 shards of 8), ``attack``, ``adv_features``, ``explain`` and
``detect`` on a tiny synthetic dataset (16 test images), with small real classifiers and
an untrained detector. Their command lines come from the stage declarations
(:func:`stage_cmd`), their params files hold every section the stage declares.
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

from advinterp.config.core import ScaleConfig
from advinterp.data.dataset import TEST
from advinterp.models.checkpoint import save_classifier
from advinterp.models.classifier import build_classifier
from advinterp.shards import DELAY_ENV, ShardJob, run_shards
from advinterp.store import (
    atomic_output,
    create_array,
    create_group,
    open_store,
    read_array,
    write_array,
)
from tests.conftest import ROOT, deep_update, pipeline_env, run, tiny_images_and_model
from tests.stages.stage_world import declared, flag_argv, section_names

N, SIZE, CHUNK = 40, 32, 8
SHARDS = N // CHUNK


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> Path:
    """A tiny images store and classifier checkpoint."""
    d = tmp_path_factory.mktemp("shards")
    tiny_images_and_model(d, N, SIZE, CHUNK)
    return d


def stage_params(path: Path, stage: str, params: dict) -> Path:
    """Write ``params`` to ``path``, plus every other section ``stage`` declares, empty
    (its defaults): a missing section is an error."""
    sections = {name: {} for name in section_names(declared(stage))}
    path.write_text(yaml.safe_dump(deep_update(sections, params)))
    return path


def stage_cmd(stage: str, params: Path, **paths: Path) -> list[str]:
    """``python -m stages.<stage> --params ... --<flag> <path>...``, flags as declared."""
    argv = flag_argv(declared(stage), paths)
    return [sys.executable, "-m", f"stages.{stage}", "--params", str(params), *argv]


def _params(d: Path, name: str, scale: dict) -> Path:
    params = {
        "base": {"device": "cpu", "num_threads": 1},
        "features": {"batch_size": 16},
        "scale": scale,
    }
    return stage_params(d / f"{name}.yaml", "features", params)


def _features_cmd(d: Path, params: Path, out: Path) -> list[str]:
    return stage_cmd("features", params, images=d / "images.zarr", model=d / "model.pt", out=out)


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


def test_features_without_prefetch_equal_the_prefetching_run(inputs, reference):
    # The reference reads each next shard ahead (scale.prefetch defaults to true).
    out = inputs / "no-prefetch.zarr"
    _run_features(inputs, _params(inputs, "no-prefetch", {"prefetch": False}), out)
    _assert_same(out, reference)


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
    from advinterp.config.dataset import SyntheticConfig
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
    params = {
        "base": {"device": "cpu", "num_threads": 1, "chunk_size": CHUNK, "seed": 0},
        "attack": {"eps": [0.03, 0.06], "steps": 2, "max_images": None, "batch_size": 8},
        "adv_train": {"eps": [0.06]},  # the robust models the attack takes
        "scale": scale,
    }
    cmd = stage_cmd(
        "attack",
        stage_params(d / f"{name}.yaml", "attack", params),
        dataset=d / "dataset.zarr",
        model=d / "model.pt",
        robust=d / "robust",
        out=d / f"{name}.zarr",
        metrics=d / f"{name}.json",
    )
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
    assert len(arrays) == 4 + 2 * (1 + 2 * 2 * 3)  # rows/labels/targets/clean + per model
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
        # Kill after the first completed shard: with 0.5 s per shard, the run could
        # only finish all SHARDS before the kill if this process stalled for ~2 s.
        _wait_for_markers(lambda: inputs.glob(".resumed.zarr.partial-*/shards/*/*.done"), 1, proc)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()
    done = len(list(inputs.glob(".resumed.zarr.partial-*/shards/*/*.done")))
    assert 1 <= done < SHARDS
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


# -- adv_features and explain: Dask equals local -------------------------------------------


def _run_stage(
    d: Path, stage: str, name: str, params: dict, **paths: Path
) -> subprocess.CompletedProcess:
    """``python -m stages.<stage>`` with ``params`` (written to ``<name>.yaml``)."""
    cmd = stage_cmd(stage, stage_params(d / f"{name}.yaml", stage, params), **paths)
    proc = subprocess.run(cmd, cwd=ROOT, env=_env(d), capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def _arrays(path: Path) -> dict[str, np.ndarray]:
    store = open_store(path)
    return {k: v[:] for k, v in store.members(max_depth=None) if isinstance(v, zarr.Array)}


def _assert_stores_equal(got: Path, expected: Path) -> dict[str, np.ndarray]:
    """Every array bitwise equal (same names, dtypes, values); returns ``expected``'s."""
    a, b = _arrays(got), _arrays(expected)
    assert sorted(a) == sorted(b)
    for name, values in b.items():
        assert a[name].dtype == values.dtype, name
        np.testing.assert_array_equal(a[name], values, err_msg=name)
    assert open_store(got).attrs.asdict() == open_store(expected).attrs.asdict()
    return b


@pytest.fixture(scope="module")
def attacked(chain_inputs) -> Path:
    """The attack stage's store of the tiny chain (a local run)."""
    _run_attack(chain_inputs, "attacked", {"executor": "local"})
    return chain_inputs / "attacked.zarr"


BASE = {"device": "cpu", "num_threads": 1, "chunk_size": CHUNK, "seed": 0}


def test_attack_store_holds_the_clean_images_and_decodes_to_the_attack(chain_inputs, attacked):
    """The stored adversarial images (relative to the store's clean images) decode bitwise
    to what attack_grid gives on those images, shard by shard as the stage ran it."""
    from advinterp.attacks.ifgsm_grid import attack_grid, step_sizes
    from advinterp.models.checkpoint import load_classifier

    store = open_store(attacked, {"rows": 1, "clean": 4})
    rows, labels, targets = (read_array(store, k) for k in ("rows", "labels", "targets"))
    dataset = open_store(chain_inputs / "dataset.zarr", {"images": 4})
    clean = dataset["images"].get_orthogonal_selection((rows,))
    np.testing.assert_array_equal(read_array(store, "clean").view(np.uint32), clean.view(np.uint32))
    eps = (0.03, 0.06)
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        model = load_classifier(chain_inputs / "model.pt")
        for s in range(0, len(rows), CHUNK):
            sl = slice(s, s + CHUNK)
            expected = attack_grid(
                model,
                torch.as_tensor(clean[sl]),
                torch.as_tensor(labels[sl]),
                torch.as_tensor(targets[sl]),
                eps=eps,
                steps=2,
                alphas=step_sizes(eps, 2, None),
                batch_size=8,
            )
            for key, want in expected.items():
                if key.endswith("/images"):
                    got = read_array(store, f"standard/{key}")[sl]
                    np.testing.assert_array_equal(got.view(np.uint32), want.view(np.uint32), key)
    finally:
        torch.set_num_threads(before)


def test_adv_features_on_two_dask_workers_equal_the_local_run(chain_inputs, attacked):
    from advinterp.models.checkpoint import load_classifier
    from advinterp.models.features import features_and_logits

    d = chain_inputs
    runs = {}
    for name, executor in (("advf_local", "local"), ("advf_dask", "dask")):
        scale = {"executor": executor, "workers": 2}
        params = {"base": BASE, "features": {"batch_size": 4}, "scale": scale}
        runs[name] = _run_stage(
            d,
            "adv_features",
            name,
            params,
            dataset=d / "dataset.zarr",
            attack=attacked,
            model=d / "model.pt",
            robust=d / "robust",
            out=d / name,
        )
    stderr = runs["advf_dask"].stderr
    # Every (model, image set) group went through one cluster: 2 models x (clean + 4 sets).
    assert stderr.count("Dask LocalCluster of 2 workers") == 1
    assert stderr.count("shards done by") == 2 * 5
    arrays = _assert_stores_equal(d / "advf_dask", d / "advf_local")
    assert len(arrays) == 3 + 2 * 5 * 2  # rows/labels/targets + features/logits per group

    # The right images through the right model: the robust model's targeted eps=0.06
    # set, recomputed in one call (batches of 4 fall on the same boundaries as shards).
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        model = load_classifier(d / "robust" / "at_0.06.pt")
        images = read_array(open_store(attacked), "at_0.06/targeted/eps_0.06/images")
        f, z = features_and_logits(model, images, 4, torch.device("cpu"))
    finally:
        torch.set_num_threads(before)
    assert len(f) == 16
    np.testing.assert_array_equal(arrays["at_0.06/targeted/eps_0.06/features"], f)
    np.testing.assert_array_equal(arrays["at_0.06/targeted/eps_0.06/logits"], z)
    assert _processes_with_env(f"PREFECT_HOME={d.parent / 'prefect-home'}") == []


@pytest.fixture(scope="module")
def localized(chain_inputs) -> Path:
    """A localized_attack-style store: 10 test images, each changed in a square region."""
    d = chain_inputs
    dataset = open_store(d / "dataset.zarr")
    rows = np.flatnonzero(dataset["split"][:] == TEST)[:10]
    images = dataset["images"].get_orthogonal_selection((rows,)).astype(np.float32)
    rng = np.random.default_rng(1)
    region = np.zeros((len(rows), SIZE, SIZE), np.uint8)
    for i in range(len(rows)):
        y, x = rng.integers(0, SIZE - 8, size=2)
        region[i, y : y + 8, x : x + 8] = 1
    noise = rng.uniform(-0.3, 0.3, images.shape).astype(np.float32)
    adv = np.clip(images + noise * region[:, None], 0, 1)
    with atomic_output(d / "localized.zarr") as tmp:
        group = create_group(tmp, {"target": 0})
        per_sample = {
            "rows": rows,
            "labels": dataset["labels"][:][rows],
            "pred": np.zeros(len(rows), np.int64),
            "source_rows": rows,
        }
        for key, values in per_sample.items():
            write_array(group, key, values, dims=("sample",), chunk_size=CHUNK)
        write_array(group, "images", adv, dims=("sample", "c", "y", "x"), chunk_size=CHUNK)
        write_array(group, "region", region, dims=("sample", "y", "x"), chunk_size=CHUNK)
    return d / "localized.zarr"


def test_explain_on_two_dask_workers_equals_the_local_run(chain_inputs, attacked, localized):
    d = chain_inputs
    explain = {
        "lime_num_samples": 20,
        "lime_batch_size": 20,
        "lime_top": 5,
        "ifgsm_images": 6,
        "ifgsm_eps": 0.06,
        "batch_size": 4,
    }
    runs = {}
    for name, executor in (("explain_local", "local"), ("explain_dask", "dask")):
        params = {"base": BASE, "explain": explain, "scale": {"executor": executor, "workers": 2}}
        runs[name] = _run_stage(
            d,
            "explain",
            name,
            params,
            dataset=d / "dataset.zarr",
            model=d / "model.pt",
            localized=localized,
            attack=attacked,
            out=d / name,
        )
    stderr = runs["explain_dask"].stderr
    assert stderr.count("Dask LocalCluster of 2 workers") == 1
    assert stderr.count("shards done by") == 3  # localized, ifgsm, clean
    arrays = _assert_stores_equal(d / "explain_dask", d / "explain_local")
    assert open_store(d / "explain_local").attrs["sets"] == ["localized", "ifgsm", "clean"]
    sizes = {s: len(arrays[f"{s}/rows"]) for s in ("localized", "ifgsm", "clean")}
    assert sizes["localized"] == 10 and sizes["ifgsm"] >= 1 and sizes["clean"] > CHUNK
    # Every example was explained (LIME ran: a seed, segments, a surrogate fit).
    for s in sizes:
        assert (arrays[f"{s}/lime_evaluated"] > 0).all(), s
        assert len(np.unique(arrays[f"{s}/lime_seed"])) == sizes[s], s
    assert _processes_with_env(f"PREFECT_HOME={d.parent / 'prefect-home'}") == []


def test_detect_on_two_dask_workers_equals_the_local_run(chain_inputs, attacked):
    from advinterp.data.artifact import read_index
    from advinterp.detection.attribute_rcnn import (
        DetectorSpec,
        build_detector,
        detect,
        save_detector,
    )

    d = chain_inputs
    index = read_index(open_store(d / "dataset.zarr"))
    torch.manual_seed(0)
    spec = DetectorSpec(  # untrained: random boxes, but real ones, up to the cap
        num_classes=len(index.part_names),
        num_attributes=len(index.attribute_names),
        image_size=SIZE,
        detections_per_img=6,
        class_names=tuple(index.part_names),
        attribute_names=tuple(index.attribute_names),
    )
    detector = build_detector(spec)
    save_detector(d / "detector.pt", detector)
    runs = {}
    for name, executor in (("detect_local", "local"), ("detect_dask", "dask")):
        params = {
            "base": BASE,
            "detect": {"eps": 0.06, "batch_size": 4},
            "scale": {"executor": executor, "workers": 2},
        }
        runs[name] = _run_stage(
            d,
            "detect",
            name,
            params,
            dataset=d / "dataset.zarr",
            attack=attacked,
            detector=d / "detector.pt",
            out=d / f"{name}.zarr",
            metrics=d / name,
        )
    stderr = runs["detect_dask"].stderr
    assert stderr.count("Dask LocalCluster of 2 workers") == 1
    assert stderr.count("shards done by") == 5  # clean + 2 models x 2 modes
    arrays = _assert_stores_equal(d / "detect_dask.zarr", d / "detect_local.zarr")
    assert (d / "detect_local").read_text() == (d / "detect_dask").read_text()
    assert not list(d.glob(".detect_*.zarr.*")), "scratch or partial left after success"

    # The ragged layout readers expect, equal to the detector run on the images directly.
    counts = np.diff(arrays["standard/targeted/box_offsets"])
    assert len(counts) == 16 and counts.max() <= 6 and counts.sum() > 0
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        images = read_array(open_store(attacked), "standard/targeted/eps_0.06/images")
        direct = detect(detector.eval(), images[:CHUNK], 4, "cpu")
    finally:
        torch.set_num_threads(before)
    np.testing.assert_array_equal(counts[:CHUNK], np.diff(direct.offsets))
    m = int(direct.offsets[-1])
    np.testing.assert_array_equal(arrays["standard/targeted/box_xyxy"][:m], direct.xyxy)
    np.testing.assert_array_equal(arrays["standard/targeted/box_part"][:m], direct.part)
    assert _processes_with_env(f"PREFECT_HOME={d.parent / 'prefect-home'}") == []
