"""Every params value that must fit the dataset, checked at once (advinterp.preflight)."""

from __future__ import annotations

import pytest
import yaml

from advinterp.config.dataset import DatasetConfig
from advinterp.data.facts import DatasetFacts, dataset_facts, expect_facts
from advinterp.errors import DatasetError, ParamError
from advinterp.preflight import CHECKED, check_params, checked_keys
from tests.conftest import ROOT, tiny_params
from tests.data.layouts import make_cub_world

FACTS = DatasetFacts("synthetic", [f"class_{c:03d}" for c in range(4)], ["a::x"] * 12, 32, 40)


def _checked(**sections) -> dict:
    params = tiny_params()
    for name, values in sections.items():
        params[name] = {**params[name], **values}
    return checked_keys(params)


def test_checked_keys_are_what_check_params_reads():
    picked = checked_keys(tiny_params())
    assert picked.keys() == {str(m.section) for m in CHECKED}
    for model, keys in CHECKED.items():
        assert set(picked[str(model.section)]) <= set(keys) <= set(model.model_fields)
    # nothing outside the declared keys is read: a params mapping of only them suffices
    check_params(picked, FACTS, 0)


def test_the_repository_params_files_fit_their_datasets():
    for rel in ("params.yaml", "profiles/digits/params.yaml"):
        params = yaml.safe_load((ROOT / rel).read_text())
        facts = dataset_facts(DatasetConfig.model_validate(params["dataset"]), 0)
        check_params(checked_keys(params), facts, params["base"]["seed"])


def test_resolved_classes_follow_each_form():
    got = check_params(
        _checked(localized_attack={"target": "class_002"}, a2e_robust={"targets": [3, 1]}),
        FACTS,
        0,
    )
    assert got["localized_attack.target"] == [2]
    assert got["a2e_robust.targets"] == [3, 1]
    assert got["a2e_explain.region.target"] == got["a2e_explain.targets"][:1]


def test_every_problem_is_named_in_one_error():
    params = _checked(
        localized_attack={"target": 9},
        a2e_explain={"targets": {"draw": 5}},
        compare={"eps": 0.07},
        ground={"top_k": 13},
        a2e_robust={"downsample": 5},
        detect={"at_model": "at_0.3"},
        adv_train={"eps": [0.1, 0.01234567]},
    )
    with pytest.raises(ParamError) as err:
        check_params(params, FACTS, 0)
    text = str(err.value)
    assert text.startswith("params do not fit the synthetic dataset (4 classes, 12 attributes")
    for want in (
        "localized_attack.target: class 9 does not exist",
        "a2e_explain.targets: draw 5 classes of a dataset with 4",
        "compare.eps: 0.07 is not in attack.eps",
        "ground.top_k: 13 is more than the dataset's 12 attributes",
        "a2e_robust.downsample: 5 does not divide dataset.image_size 32",
        "detect.at_model: 'at_0.3' is not trained",
        # DVC would name its run's files at_0.01234567, the readers look for at_0.0123457
        "adv_train.eps: 0.01234567 has more digits than a model's name keeps",
    ):
        assert want in text, text


def test_a_section_the_profile_lacks_is_not_checked():
    params = checked_keys({"attack": {"eps": [0.1]}, "detect": {"eps": 0.5}})
    with pytest.raises(ParamError, match="detect.eps: 0.5"):
        check_params(params, FACTS, 0)
    assert check_params(checked_keys({"detect": {"eps": 0.5}}), FACTS, 0) == {}


def test_facts_of_a_cub_layout_come_from_its_index(tmp_path):
    make_cub_world(tmp_path, 5, 4)
    cfg = DatasetConfig(source="cub", root=tmp_path, image_size=32)
    facts = dataset_facts(cfg, 0)
    assert facts.source == "cub" and len(facts.class_names) == 5 and facts.images == 20
    assert facts.class_names[1] == "002.Bird_002"
    expect_facts(facts.to_json(), facts, "f.json")
    other = DatasetFacts.from_json({**facts.to_json(), "images": 19})
    with pytest.raises(DatasetError, match="f.json: the dataset's images changed"):
        expect_facts(other.to_json(), facts, "f.json")
