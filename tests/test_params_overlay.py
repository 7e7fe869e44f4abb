"""Resizing a params file with an overlay (advinterp.config.overlay, flows.params)."""

from __future__ import annotations

import subprocess
import sys

import pytest
import yaml

from advinterp.config.overlay import overlay
from advinterp.errors import ParamError
from tests.conftest import ROOT

# What params/smoke.yaml may change: sizes, counts, steps, epochs, resolution, and the
# networks (to small torchvision ones, with no weights file). Never a dataset, a class
# choice, a budget or a method's setting.
SIZE_KEYS = {
    "num_threads", "chunk_size", "image_size", "epochs", "batch_size", "max_images",
    "eval_images", "eval_steps", "steps", "images", "patience", "num_images", "max_regions",
    "max_steps", "lime_num_samples", "lime_batch_size", "lime_top", "ifgsm_images",
    "max_superpixels", "figure_examples", "dpi", "figure_classes", "jsma_max_images",
    "candidates", "examples", "bins", "seeds_per_target", "num_samples", "max_iterations",
    "refine_every", "refine_until", "eval_batch_size", "n_segments", "widths", "fc_width",
    "input_size", "code_dim", "compress_width", "gen_width", "disc_width", "gen_size",
    "ig_steps", "pgd_steps", "mpgd_steps", "examples_per_mode", "localized_examples",
    "arch", "weights", "backbone", "scale", "sigma", "min_size",
}  # fmt: skip


def _leaves(tree: dict, at: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    out = []
    for k, v in tree.items():
        out += _leaves(v, (*at, k)) if isinstance(v, dict) else [(*at, k)]
    return out


def test_overlay_replaces_only_what_it_names_and_keeps_the_rest():
    base = {"train": {"epochs": 30, "optimizer": {"lr": 0.1, "name": "sgd"}, "arch": "resnet152"}}
    got = overlay(base, {"train": {"epochs": 1, "optimizer": {"lr": 0.5}}}, "o.yaml")
    assert got == {
        "train": {"epochs": 1, "optimizer": {"lr": 0.5, "name": "sgd"}, "arch": "resnet152"}
    }
    assert base["train"]["epochs"] == 30  # the base is not modified


def test_a_key_the_base_lacks_or_a_bad_value_is_an_error():
    base = {"train": {"epochs": 30}}
    with pytest.raises(ParamError, match=r"o.yaml: train.epoch is not a key of the base"):
        overlay(base, {"train": {"epoch": 1}}, "o.yaml")
    with pytest.raises(ParamError, match=r"o.yaml over the base file: train.epochs"):
        overlay(base, {"train": {"epochs": -1}}, "o.yaml")


def test_the_smoke_overlay_changes_sizes_only_and_fits_the_real_config():
    smoke = yaml.safe_load((ROOT / "params/smoke.yaml").read_text())
    assert {leaf[-1] for leaf in _leaves(smoke)} <= SIZE_KEYS
    assert "dataset" in smoke and set(smoke["dataset"]) == {"image_size"}
    real = yaml.safe_load((ROOT / "params/cub_resnet152.yaml").read_text())
    merged = overlay(real, smoke, "params/smoke.yaml")
    assert merged["dataset"]["source"] == "cub" and merged["attack"]["eps"] == real["attack"]["eps"]


def test_the_command_writes_the_merge_or_exits_2_with_one_line(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("train: {epochz: 1}\n")
    out = tmp_path / "params.yaml"
    cmd = [sys.executable, "-m", "flows.params", "overlay", "params/cub_resnet152.yaml"]
    proc = subprocess.run(
        [*cmd, str(bad), "-o", str(out)], cwd=ROOT, capture_output=True, text=True
    )
    assert proc.returncode == 2 and not out.exists()
    assert proc.stderr.strip().splitlines() == [
        f"{bad}: train.epochz is not a key of the base params file"
    ]
    ok = subprocess.run(
        [*cmd, "params/smoke.yaml", "-o", str(out)], cwd=ROOT, capture_output=True, text=True
    )
    assert ok.returncode == 0, ok.stderr
    assert yaml.safe_load(out.read_text())["train"]["arch"] == "resnet18"
    check = subprocess.run(
        [sys.executable, "-m", "flows.params", "check", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert check.returncode == 0 and "30 sections valid" in check.stderr
