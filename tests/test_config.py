"""advinterp.config: sections validate, errors name the file and dotted key."""

from __future__ import annotations

import pytest
import yaml

from advinterp.config import (
    BaseConfig,
    DatasetConfig,
    TrainConfig,
    load_section,
    parse_section,
    read_params,
)
from advinterp.errors import ParamError
from tests.conftest import ROOT


def test_repository_params_validate():
    params = read_params(ROOT / "params.yaml")
    assert load_section(BaseConfig, "base", ROOT / "params.yaml").device == "auto"
    assert (
        load_section(DatasetConfig, "dataset", ROOT / "params.yaml").source
        == params["dataset"]["source"]
    )
    assert load_section(TrainConfig, "train", ROOT / "params.yaml").epochs >= 1


@pytest.mark.parametrize(
    ("section", "model", "data", "message"),
    [
        ("train", TrainConfig, {"epochs": 0}, r"train\.epochs"),
        ("train", TrainConfig, {"lr": -1}, r"train\.lr"),
        ("train", TrainConfig, {"optimizer": "rmsprop"}, r"train\.optimizer"),
        ("train", TrainConfig, {"epoch": 3}, r"train\.epoch.*Extra inputs"),
        ("dataset", DatasetConfig, {"source": "imagenet"}, r"dataset\.source"),
        ("dataset", DatasetConfig, {"source": "cub"}, r"needs dataset\.root"),
        ("dataset", DatasetConfig, {"val_fraction": 0.5, "test_fraction": 0.5}, "leave images"),
        ("base", BaseConfig, {"device": "gpu"}, r"base\.device"),
    ],
)
def test_bad_values_raise_param_error_naming_the_key(section, model, data, message):
    with pytest.raises(ParamError, match=message):
        parse_section(model, section, data, source="params.yaml")


def test_load_section_names_the_file(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump({"train": {"batch_size": 0}}))
    with pytest.raises(ParamError, match=r"p\.yaml: train\.batch_size"):
        load_section(TrainConfig, "train", path)
    path.write_text("train: [unclosed")
    with pytest.raises(ParamError, match="not valid YAML"):
        load_section(TrainConfig, "train", path)
    with pytest.raises(ParamError, match="not found"):
        load_section(TrainConfig, "train", tmp_path / "absent.yaml")


def test_sections_are_frozen():
    cfg = parse_section(TrainConfig, "train", {})
    with pytest.raises(Exception):  # noqa: B017 - pydantic's frozen error type varies by version
        cfg.epochs = 3


def test_scale_section_defaults_to_local_and_checks_its_values():
    from advinterp.config import ScaleConfig

    default = parse_section(ScaleConfig, "scale", None)
    assert (default.executor, default.workers, default.address) == ("local", 2, None)
    for bad, key in (({"executor": "spark"}, "scale.executor"), ({"workers": 0}, "scale.workers")):
        with pytest.raises(ParamError, match=key):
            parse_section(ScaleConfig, "scale", bad)
