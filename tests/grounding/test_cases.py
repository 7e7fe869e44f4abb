"""Image eligibility and the choice of the adversarially trained model."""

from __future__ import annotations

import numpy as np
import pytest

from advinterp.data.adversarial import ModelEntry
from advinterp.grounding.cases import fooled, pick_at_model, recovered

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
