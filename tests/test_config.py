"""advinterp.config: sections validate, errors name the file and dotted key."""

from __future__ import annotations

import pytest
import yaml

from advinterp.config.core import BaseConfig, all_sections, load, parse_section, read_params
from advinterp.config.dataset import DatasetConfig
from advinterp.config.train import TrainConfig
from advinterp.errors import ParamError
from tests.conftest import ROOT


def test_repository_params_validate():
    params = read_params(ROOT / "params.yaml")
    assert load(BaseConfig, ROOT / "params.yaml").device == "auto"
    assert load(DatasetConfig, ROOT / "params.yaml").source == params["dataset"]["source"]
    assert load(TrainConfig, ROOT / "params.yaml").epochs >= 1


@pytest.mark.parametrize(
    ("section", "model", "data", "message"),
    [
        ("train", TrainConfig, {"epochs": 0}, r"train\.epochs"),
        ("train", TrainConfig, {"optimizer": {"lr": -1}}, r"train\.optimizer\.lr"),
        ("train", TrainConfig, {"optimizer": {"name": "rmsprop"}}, r"train\.optimizer\.name"),
        ("train", TrainConfig, {"optimizer": "sgd"}, r"train\.optimizer"),
        ("train", TrainConfig, {"epoch": 3}, r"train\.epoch.*Extra inputs"),
        ("dataset", DatasetConfig, {"source": "imagenet"}, r"dataset\.source"),
        ("dataset", DatasetConfig, {"source": "cub"}, r"needs dataset\.root"),
        ("dataset", DatasetConfig, {"val_fraction": 0.5, "test_fraction": 0.5}, "leave images"),
        ("base", BaseConfig, {"device": "gpu"}, r"base\.device"),
    ],
)
def test_bad_values_raise_param_error_naming_the_key(section, model, data, message):
    with pytest.raises(ParamError, match=message):
        parse_section(model, data, source="params.yaml")


def test_load_names_the_file(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump({"train": {"batch_size": 0}}))
    with pytest.raises(ParamError, match=r"p\.yaml: train\.batch_size"):
        load(TrainConfig, path)
    path.write_text("train: [unclosed")
    with pytest.raises(ParamError, match="not valid YAML"):
        load(TrainConfig, path)
    with pytest.raises(ParamError, match="not found"):
        load(TrainConfig, tmp_path / "absent.yaml")


def test_sections_are_frozen():
    cfg = parse_section(TrainConfig, {})
    with pytest.raises(Exception):  # noqa: B017 - pydantic's frozen error type varies by version
        cfg.epochs = 3


def test_scale_section_defaults_to_local_and_checks_its_values():
    from advinterp.config.core import ScaleConfig

    default = parse_section(ScaleConfig, None)
    assert (default.executor, default.workers, default.address) == ("local", 2, None)
    for bad, key in (({"executor": "spark"}, "scale.executor"), ({"workers": 0}, "scale.workers")):
        with pytest.raises(ParamError, match=key):
            parse_section(ScaleConfig, bad)


def test_a_missing_section_is_an_error_not_defaults(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump({"base": {"seed": 1}}))
    with pytest.raises(ParamError, match=r"p\.yaml: section 'train' is missing"):
        load(TrainConfig, path)


def test_every_registered_section_has_valid_defaults_and_rejects_unknown_keys():
    sections = all_sections()
    assert len(sections) == 30
    for name, model in sections.items():
        assert parse_section(model, {}).section == name
        with pytest.raises(ParamError, match=rf"{name}\.no_such_key"):
            parse_section(model, {"no_such_key": 1})


def test_a_section_name_cannot_be_registered_twice():
    from typing import ClassVar

    from advinterp.config.core import Section

    with pytest.raises(TypeError, match="declared twice"):

        class Again(Section):
            section: ClassVar[str | None] = "train"


def test_optimizer_and_figure_groups_are_shared_models():
    from advinterp.config.core import FigureParams, OptimizerParams

    sections = all_sections()
    with_optimizer = [n for n, m in sections.items() if "optimizer" in m.model_fields]
    assert {"train", "adv_train", "mask_classifier"} <= set(with_optimizer)
    for name in with_optimizer:
        assert sections[name].model_fields["optimizer"].annotation is OptimizerParams
    with_figure = [n for n, m in sections.items() if "figure" in m.model_fields]
    assert len(with_figure) >= 9
    for name in with_figure:
        assert sections[name].model_fields["figure"].annotation is FigureParams
