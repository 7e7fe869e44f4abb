"""Class choices relative to the dataset: indices, names and seeded draws."""

from __future__ import annotations

import numpy as np
import pytest

from advinterp.config.a2e_explain import A2EExplainConfig
from advinterp.config.a2e_robust import A2ERobustConfig
from advinterp.config.classes import ClassDraw, class_draw, resolve_class, resolve_classes
from advinterp.config.core import parse_section
from advinterp.errors import ParamError

CUB = ["001.Black_footed_Albatross", "002.Laysan_Albatross", "003.Sooty_Albatross"]


def test_a_class_is_an_index_a_name_or_a_cub_name_without_its_number():
    assert resolve_class(2, CUB, "p") == 2
    assert resolve_class("002.Laysan_Albatross", CUB, "p") == 1
    assert resolve_class("Laysan_Albatross", CUB, "p") == 1
    assert resolve_class("class_001", ["class_000", "class_001"], "p") == 1


@pytest.mark.parametrize(
    ("choice", "message"),
    [
        (3, r"p: class 3 does not exist \(the dataset has 3 classes, 0\.\.2\)"),
        ("Albatross", r"p: no class is named 'Albatross'"),
        (True, r"neither a class index nor a class name"),
    ],
)
def test_a_class_that_is_not_there_names_the_param(choice, message):
    with pytest.raises(ParamError, match=message):
        resolve_class(choice, CUB, "p")


def test_a_list_keeps_its_order_and_refuses_repeats():
    assert resolve_classes([2, "Black_footed_Albatross"], CUB, 0, "t") == [2, 0]
    with pytest.raises(ParamError, match=r"t\[1\]: class 7"):
        resolve_classes([0, 7], CUB, 0, "t")
    with pytest.raises(ParamError, match="listed twice"):
        resolve_classes([1, "Laysan_Albatross"], CUB, 0, "t")


def test_a_draw_is_seeded_sorted_distinct_and_nested_in_larger_draws():
    names = [f"class_{c:03d}" for c in range(50)]
    two = resolve_classes(ClassDraw(draw=2), names, 0, "t")
    assert two == class_draw(50, 2, 0) == sorted(set(two)) and len(two) == 2
    assert resolve_classes(ClassDraw(draw=2), names, 0, "t") == two  # the same seed: the same
    assert set(two) <= set(class_draw(50, 5, 0))  # a prefix of one permutation
    draws = {tuple(class_draw(50, 2, s)) for s in range(20)}
    assert len(draws) > 10  # the seed moves it
    # the permutation is numpy's default_rng over (seed, stream): its first k, sorted
    order = np.random.default_rng([3, 0xC1A55]).permutation(50)
    assert class_draw(50, 4, 3) == sorted(order[:4].tolist())
    with pytest.raises(ParamError, match="draw 51 classes of a dataset with 50"):
        resolve_classes(ClassDraw(draw=51), names, 0, "t")


def test_sections_take_every_form_and_refuse_others_in_one_line():
    for targets in ([1, "class_002"], {"draw": 3}):
        parse_section(A2EExplainConfig, {"targets": targets})
    assert parse_section(A2ERobustConfig, {}).targets == ClassDraw(draw=2)
    for bad in ([], {"draw": 0}, [-1], "x", {"draw": 2, "seed": 1}):
        with pytest.raises(ParamError, match=r"a2e_explain.targets: .*expected a non-empty list"):
            parse_section(A2EExplainConfig, {"targets": bad})
