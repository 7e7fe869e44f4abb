"""Image eligibility and the choice of the adversarially trained model."""

from __future__ import annotations

import numpy as np
import pytest

from advinterp.data.adversarial import ChainLayout, ModelEntry
from advinterp.errors import ParamError
from advinterp.grounding.cases import (
    chain_at_model,
    example_images,
    fooled,
    pick_at_model,
    recovered,
)

MODELS = [
    ModelEntry("standard", None, "a.pt"),
    ModelEntry("at_0.12", 0.12, "c.pt"),
    ModelEntry("at_0.01", 0.01, "b.pt"),
]


def test_fooled_and_recovered():
    true = np.array([0, 1, 2, 3])
    assert fooled(true, [0, 1, 0, 3], [1, 1, 1, 0]).tolist() == [True, False, False, True]
    assert recovered(true, [1, 1, 0, 0], [0, 2, 2, 3]).tolist() == [True, False, True, True]


def test_pick_at_model():
    assert pick_at_model(MODELS, 0.06) == "at_0.01"  # |0.05| < |0.06|
    assert pick_at_model(MODELS, 0.1) == "at_0.12"
    assert pick_at_model(MODELS, 0.1, "at_0.01") == "at_0.01"
    with pytest.raises(ValueError, match="not among"):
        pick_at_model(MODELS, 0.1, "standard")
    with pytest.raises(ValueError, match="no adversarially trained"):
        pick_at_model(MODELS[:1], 0.1)


def test_chain_at_model_checks_the_grid_and_names_the_section():
    layout = ChainLayout(tuple(MODELS), ("untargeted",), (0.01, 0.06))
    assert chain_at_model(layout, 0.06, "auto", "distances") == "at_0.01"
    assert chain_at_model(layout, 0.06 + 1e-12, "at_0.12", "ground") == "at_0.12"  # isclose
    with pytest.raises(ParamError, match=r"^distances.eps: 0.02 is not in .*\[0.01, 0.06\]"):
        chain_at_model(layout, 0.02, "auto", "distances")
    with pytest.raises(ParamError, match="^detect.at_model: model 'at_9'"):
        chain_at_model(layout, 0.01, "at_9", "detect")


def test_example_images_one_per_class_first_then_in_order():
    true = np.array([0, 0, 1, 1, 2, 0])
    picked = np.array([0, 1, 3, 5])  # classes 0, 0, 1, 0
    assert example_images(picked, true, 2) == [0, 3]
    assert example_images(picked, true, 3) == [0, 3, 1]  # classes run out: next in order
    assert example_images(picked, true, 10) == [0, 3, 1, 5]
    assert example_images(np.array([], int), true, 2) == []
