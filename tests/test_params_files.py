"""The shipped params files validate section by section, against the registry of models."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from advinterp.config.core import all_sections, load
from advinterp.config.dataset import DatasetConfig
from advinterp.config.train import TrainConfig

ROOT = Path(__file__).resolve().parents[1]
PARAMS = ROOT / "params.yaml"
CUB_PARAMS = ROOT / "params" / "cub_resnet152.yaml"
SECTIONS = all_sections()


def _sections(path: Path) -> dict:
    return yaml.safe_load(path.read_text())


@pytest.mark.parametrize("path", [PARAMS, CUB_PARAMS], ids=["params.yaml", "cub_resnet152"])
def test_the_file_has_exactly_the_registered_sections(path):
    names = set(_sections(path))
    assert names == set(SECTIONS), (
        f"{path.name}: missing {sorted(set(SECTIONS) - names)}, unknown {sorted(names - set(SECTIONS))}"
    )


@pytest.mark.parametrize("path", [PARAMS, CUB_PARAMS], ids=["params.yaml", "cub_resnet152"])
@pytest.mark.parametrize("name", sorted(SECTIONS))
def test_every_section_validates_against_its_model(path, name):
    cfg = load(SECTIONS[name], path)
    assert cfg.section == name


def test_registry_covers_every_stage_section():
    # the two a2e sections were once skipped by a name-mangling lookup: name them here
    for name in (
        "a2e_explain",
        "a2e_robust",
        "igan_train",
        "lan_attacks",
        "lime_study",
        "base",
        "scale",
    ):
        assert name in SECTIONS, name
    assert len(SECTIONS) == 30


def test_is_a_real_cub_resnet152_run():
    data = load(DatasetConfig, CUB_PARAMS)
    train = load(TrainConfig, CUB_PARAMS)
    assert data.source == "cub" and data.image_size == 224 and data.root is not None
    assert train.arch == "resnet152"
    assert train.weights is not None and train.weights.suffix == ".pth"
    assert _sections(CUB_PARAMS)["base"]["device"] == "auto"


DIGITS = ROOT / "profiles" / "digits" / "params.yaml"


def test_the_digits_profile_has_every_section_its_stages_read_and_each_validates():
    from flows.generate import declarations

    raw = _sections(DIGITS)
    assert set(raw) <= set(SECTIONS), sorted(set(raw) - set(SECTIONS))
    runs = set(raw["profile"]["stages"])
    needed = {"base", "profile"} | {
        m.section for s in declarations() if s.name in runs for m in s.models if m.section
    }
    assert needed <= set(raw), f"missing {sorted(needed - set(raw))}"
    for name in raw:
        assert load(SECTIONS[name], DIGITS).section == name


@pytest.mark.parametrize("path", [PARAMS, CUB_PARAMS, DIGITS], ids=["params", "cub", "digits"])
def test_the_file_has_every_key_its_stages_declare(path):
    """DVC refuses a stage whose declared param is missing from the file, even where the
    model has a default (``explain.saliency`` was missing from the real config)."""
    from flows.params import check

    check(path)
