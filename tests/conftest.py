"""Shared fixtures: tiny deterministic configs and a scratch copy of the pipeline."""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from flows.dvc_dag import dvc_env

ROOT = Path(__file__).resolve().parents[1]

# The smallest params that still exercise every stage: used by the dvc/Prefect tests.
TINY_PARAMS = {
    "base": {"seed": 0, "device": "cpu", "num_threads": 1, "chunk_size": 8},
    "dataset": {
        "source": "synthetic",
        "image_size": 32,
        "val_fraction": 0.2,
        "test_fraction": 0.3,
        "synthetic": {"num_classes": 4, "images_per_class": 10, "families": 2, "clutter": 2},
    },
    "train": {"epochs": 1, "batch_size": 16},
    "features": {"batch_size": 16},
    "localized_attack": {
        "num_images": 3,
        "max_regions": 2,
        "segmentation": {"scale": 100.0, "sigma": 1.0, "min_size": 10},
        "eps": 1.0,
        "step_size": 0.1,
        "max_steps": 20,
        "patience": 5,
        "batch_size": 8,
    },
    "explain": {
        "lime_num_samples": 40,
        "lime_top": 5,
        "ifgsm_images": 2,
        "ifgsm_eps": 0.06,
        "batch_size": 8,
    },
    "explain_eval": {"max_superpixels": 5, "figure_examples": 2, "figure": {"dpi": 40}},
    "train_detector": {"epochs": 1, "batch_size": 8, "eval_images": 8},
    "detect": {"eps": 0.06, "batch_size": 8},
    "ground": {"examples": 2, "figure": {"dpi": 40}},
    "distances": {"eps": 0.06, "bins": 5, "figure": {"dpi": 40}},
    "attack": {"eps": [0.01, 0.06, 0.12], "steps": 2, "max_images": 8, "batch_size": 8},
    "adv_train": {
        "eps": [0.06],
        "steps": 1,
        "epochs": 1,
        "batch_size": 16,
        "eval_steps": 2,
        "eval_images": 8,
    },
    "sje": {"epochs": 5, "patience": 3, "batch_size": 16},
    "accuracy": {"figure": {"dpi": 40}},
    "lan_train": {"epochs": 1, "batch_size": 16, "figure_classes": 4, "figure": {"dpi": 40}},
    "mask_classifier": {"epochs": 2, "batch_size": 16},
    "lan_attacks": {
        "max_images": 4,
        "jsma_max_images": 2,
        "batch_size": 4,
        "jsma": {"gamma": 0.005, "candidates": 32},
        "cw": {"steps": 5},
        "transfer": {"arch": "tiny_resnet", "epochs": 1, "batch_size": 16},
    },
    "lan_detect": {"batch_size": 16, "figure_examples": 1, "figure": {"dpi": 40}},
    "a2e_second": {"epochs": 1, "batch_size": 16},
    "a2e_explain": {
        "reference_size": None,  # eta 2.0 at the tiny 32 px as it is
        "targets": [1],
        "seeds_per_target": 2,
        "num_samples": 6,
        "eval_images": 4,
        "attack": {
            "eta": 2.0,
            "batch_size": 3,
            "max_iterations": 3,
            "refine_every": 2,
            "refine_until": 5,
        },
        "region": {"positions": [[0.2, 0.2]]},
        "figure": {"dpi": 40},
    },
    "a2e_robust": {
        "targets": [1],
        "seeds_per_target": 1,
        "num_samples": 4,
        "generation": {"max_iterations": 3},
        "inpainting": {"images": 1, "attack": {"max_iterations": 3}},
        "sketch": {
            "n_segments": 6,
            "attack": {"max_iterations": 2, "refine_every": 1, "refine_until": 3},
        },
        "figure": {"dpi": 40},
    },
    "igan_train": {
        "classifier": {
            "widths": [4, 6],
            "fc_width": 16,
            "input_size": 16,
            "epochs": 1,
            "batch_size": 16,
        },
        "adversarial": {"steps": 1},
        "gan": {
            "code_dim": 8,
            "compress_width": 4,
            "gen_width": 4,
            "disc_width": 4,
            "gen_size": 16,
            "epochs": 1,
            "batch_size": 16,
        },
    },
    "igan_explain": {"examples": 2, "steps": 2, "ig_steps": 4, "figure": {"dpi": 40}},
    "igan_vulnerability": {"steps": 2, "max_images": 8, "figure": {"dpi": 40}},
    "pooling_study": {"pgd_steps": [1, 2], "mpgd_steps": 1, "max_images": 8},
    "compare": {
        "eps": 0.06,
        "examples_per_mode": 2,
        "localized_examples": 2,
        "batch_size": 8,
        "figure_examples": 1,
        "figure": {"dpi": 40},
    },
}


@contextlib.contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """torch's CPU thread count set to ``n``, restored on exit."""
    import torch  # local: most stage and flow tests never import torch in this process

    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


# One torch thread for the small-model tests (``pytestmark = pytest.mark.usefixtures(...)``):
# these models gain nothing from more, and on a shared CPU OpenMP threads spin against
# each other. The per-module variant also covers the module's expensive shared fixtures.
@pytest.fixture
def one_thread() -> Iterator[None]:
    with torch_threads(1):
        yield


@pytest.fixture(scope="module")
def one_thread_per_module() -> Iterator[None]:
    with torch_threads(1):
        yield


def deep_update(base: dict, new: dict) -> dict:
    out = dict(base)
    for k, v in new.items():
        out[k] = (
            deep_update(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
        )
    return out


# The digits profile, tiny: the stage sections it shares with the birds take the same
# tiny values; its own data and the 28 px model sizes are set here.
TINY_DIGITS = {
    "base": TINY_PARAMS["base"],
    "dataset": {
        "image_size": 28,
        "val_fraction": 0.2,
        "test_fraction": 0.3,
        "digits": {"images_per_class": 6},
    },
    "lan_attacks": {"fgsm": {"eps": 0.3}, "transfer": {"arch": "small_cnn", "fgsm_eps": 0.3}},
    "igan_train": {"classifier": {"input_size": 28}, "gan": {"gen_size": 16}},
    "igan_explain": {"eps": 0.3},
    "igan_vulnerability": {"eps": 0.3},
    # the findings read Table 2's columns by name: PGD-40, PGD-100 and M-PGD-40
    "pooling_study": {"eps": 0.3, "pgd_steps": [40, 100], "mpgd_steps": 40},
}


def tiny_params(profile: str | None = None) -> dict:
    """A params file with the tiny overrides applied: the repository's params.yaml, or
    ``profiles/<profile>/params.yaml``."""
    if profile is None:
        return deep_update(yaml.safe_load((ROOT / "params.yaml").read_text()), TINY_PARAMS)
    params = yaml.safe_load((ROOT / "profiles" / profile / "params.yaml").read_text())
    shared = {k: v for k, v in TINY_PARAMS.items() if k in params and k != "dataset"}
    return deep_update(deep_update(params, shared), TINY_DIGITS)


def pipeline_env() -> dict[str, str]:
    """Environment in which dvc's ``python -m stages.X`` finds this interpreter."""
    env = dvc_env()
    env["PYTHONPATH"] = ""  # the scratch repo's own stages/ and advinterp/ come first via cwd
    env["DVC_NO_ANALYTICS"] = "1"
    return env


def run(cmd: list[str], cwd: Path, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, cwd=cwd, env=pipeline_env(), capture_output=True, text=True)
    if check and proc.returncode != 0:
        raise AssertionError(
            f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
        )
    return proc


def init_repo(repo: Path, message: str) -> Path:
    """``git init`` + ``dvc init`` (analytics off) in ``repo`` and one commit of it all."""
    run(["git", "init", "-q"], repo)
    run(["git", "config", "user.email", "ci@example.invalid"], repo)
    run(["git", "config", "user.name", "ci"], repo)
    run([sys.executable, "-m", "dvc", "init", "-q"], repo)
    run([sys.executable, "-m", "dvc", "config", "core.analytics", "false"], repo)
    run(["git", "add", "-A"], repo)
    run(["git", "commit", "-qm", message], repo)
    return repo


def scratch_repo(repo: Path) -> Path:
    """A fresh git+dvc repository at ``repo`` holding a copy of the pipeline and the
    tiny params (every profile's)."""
    repo.mkdir()
    for name in ("advinterp", "stages", "flows"):
        shutil.copytree(ROOT / name, repo / name, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("dvc.yaml", ".dvcignore", ".gitignore"):
        shutil.copy(ROOT / name, repo / name)
    (repo / "params.yaml").write_text(yaml.safe_dump(tiny_params(), sort_keys=False))
    for profile in sorted(p.parent.name for p in (ROOT / "profiles").glob("*/params.yaml")):
        (repo / "profiles" / profile).mkdir(parents=True)
        shutil.copy(ROOT / "profiles" / profile / "dvc.yaml", repo / "profiles" / profile)
        text = yaml.safe_dump(tiny_params(profile), sort_keys=False)
        (repo / "profiles" / profile / "params.yaml").write_text(text)
    return init_repo(repo, "pipeline")


@pytest.fixture
def pipeline_repo(tmp_path: Path) -> Path:
    """A fresh git+dvc repository holding a copy of the pipeline and tiny params."""
    return scratch_repo(tmp_path / "repo")


def ran_stages(stdout: str) -> set[str]:
    """The stage runs a ``dvc repro`` output announces: ``name``, ``name@seed`` (a seeded
    stage) or ``profiles/<p>/dvc.yaml:name@seed`` (another profile's)."""
    return {line.split("'")[1] for line in stdout.splitlines() if line.startswith("Running stage")}


def stage_names(runs: set[str]) -> set[str]:
    """The default profile's stage names among ``runs`` (every seed of a stage: one name)."""
    return {r.split("@")[0] for r in runs if ":" not in r}


def first_seed(path: str) -> str:
    """Where a seeded stage's first seed (0) writes its declared ``path``."""
    from advinterp.profiles import locate

    return locate(path, None, 0)


# The whole-DAG test takes about 7 of the suite's 18 minutes on 2 cores: it goes first.
RUN_FIRST = ("tests/stages/test_pipeline_dvc.py",)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Longest first, module by module: the whole-DAG test, then every module with a
    ``slow`` test, then the rest, each module's tests together and in their own order.
    ``scripts/test.sh`` runs the suite on two workers (pytest-xdist, one module at a
    time per worker); starting the long ones first lets both workers end together."""
    slow = {item.nodeid.split("::")[0] for item in items if item.get_closest_marker("slow")}
    first = {item.nodeid.split("::")[0]: i for i, item in enumerate(items)}

    def rank(item: pytest.Item) -> tuple[int, int]:
        module = item.nodeid.split("::")[0]
        tier = 0 if module in RUN_FIRST else 1 if module in slow else 2
        return tier, first[module]

    items.sort(key=rank)  # stable: a module's tests keep their order


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Stop Prefect's temporary API server, if a test started one, while pytest's capture
    is still open. Left to its atexit hook, the server logs "Stopping temporary server"
    through Prefect's console handler, whose stream (pytest's captured stderr) is closed
    by then, and the run ends with a "--- Logging error ---" traceback."""
    if "prefect.server.api.server" not in sys.modules:
        return  # no temporary server in this process
    from prefect.events.worker import EventsWorker
    from prefect.logging.handlers import APILogWorker
    from prefect.server.api.server import SubprocessASGIServer

    APILogWorker.drain_all(timeout=5)  # the last logs and events go to the server first
    EventsWorker.drain_all(timeout=5)
    SubprocessASGIServer().stop()  # the temporary server (none started: nothing to do)


def tiny_images_and_model(d: Path, n: int, size: int, chunk: int) -> Path:
    """``d/images.zarr`` of ``n`` seeded random images and ``d/model.pt``, a seeded
    4-class tiny_resnet: the inputs of the sharded feature tests. Returns ``d``."""
    import numpy as np
    import torch

    from advinterp.models.checkpoint import save_classifier
    from advinterp.models.classifier import build_classifier
    from advinterp.store import atomic_output, create_group, write_array

    torch.manual_seed(0)
    save_classifier(d / "model.pt", build_classifier("tiny_resnet", 4, (0.5,) * 3, (0.25,) * 3))
    images = np.random.default_rng(0).random((n, 3, size, size), dtype=np.float32)
    with atomic_output(d / "images.zarr") as tmp:
        write_array(
            create_group(tmp), "images", images, dims=("sample", "c", "y", "x"), chunk_size=chunk
        )
    return d
