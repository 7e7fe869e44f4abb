"""The shipped real-run params file stays valid and in step with params.yaml."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

import advinterp.config as config
from advinterp.config import DatasetConfig, TrainConfig, load_section

ROOT = Path(__file__).resolve().parents[1]
CUB_PARAMS = ROOT / "params" / "cub_resnet152.yaml"


def section_models() -> dict[str, type[config.Section]]:
    """Section name -> model, by the project's naming rule (``AdvTrainConfig`` = ``adv_train``)."""
    out = {}
    for obj in vars(config).values():
        if (
            isinstance(obj, type)
            and issubclass(obj, config.Section)
            and obj.__name__.endswith("Config")
        ):
            stem = obj.__name__.removesuffix("Config")
            out[re.sub(r"(?<!^)(?=[A-Z])", "_", stem).lower()] = obj
    return out


def _sections(path: Path) -> dict:
    return yaml.safe_load(path.read_text())


@pytest.mark.parametrize("name", list(_sections(CUB_PARAMS)))
def test_every_section_validates_against_its_model(name):
    models = section_models()
    known = set(_sections(ROOT / "params.yaml"))
    assert name in models or name in known, f"{CUB_PARAMS.name}: unknown section '{name}'"
    if name in models:
        load_section(models[name], name, CUB_PARAMS)


def test_mirrors_every_section_of_params_yaml():
    missing = set(_sections(ROOT / "params.yaml")) - set(_sections(CUB_PARAMS))
    assert not missing, f"add these params.yaml sections to {CUB_PARAMS.name}: {sorted(missing)}"


def test_is_a_real_cub_resnet152_run():
    data = load_section(DatasetConfig, "dataset", CUB_PARAMS)
    train = load_section(TrainConfig, "train", CUB_PARAMS)
    assert data.source == "cub" and data.image_size == 224 and data.root is not None
    assert train.arch == "resnet152"
    assert train.weights is not None and train.weights.suffix == ".pth"
    assert _sections(CUB_PARAMS)["base"]["device"] == "auto"
