"""Names of the attribute chain's stores: keys, attrs round trip, iteration order."""

from __future__ import annotations

import json

import pytest

from advinterp.data.adversarial import (
    MODES,
    ChainLayout,
    ModelEntry,
    at_entries,
    eps_key,
    model_key,
)
from advinterp.errors import StoreError


def test_keys():
    assert model_key(None) == "standard"
    assert model_key(0.06) == "at_0.06"
    assert eps_key(0.005) == "eps_0.005"
    assert eps_key(0.12) == "eps_0.12"


def test_attrs_round_trip_through_json_and_set_order():
    layout = ChainLayout(
        (ModelEntry("standard", None, "m.pt"), ModelEntry("at_0.06", 0.06, "r/at_0.06.pt")),
        MODES,
        (0.01, 0.06),
    )
    attrs = json.loads(json.dumps(layout.to_attrs()))  # as zarr stores them
    assert attrs["eps_keys"] == ["eps_0.01", "eps_0.06"]
    assert ChainLayout.from_attrs(attrs, "store") == layout
    paths = [p for *_, p in layout.adversarial_sets()]
    assert paths[:3] == [
        "standard/untargeted/eps_0.01",
        "standard/untargeted/eps_0.06",
        "standard/targeted/eps_0.01",
    ]
    assert len(paths) == 2 * 2 * 2
    assert [m.key for m in at_entries(layout.models)] == ["at_0.06"]


def test_missing_attrs_name_the_store():
    with pytest.raises(StoreError, match="features.zarr: not an attribute-chain store"):
        ChainLayout.from_attrs({"modes": []}, "features.zarr")


def test_image_sets_clean_first_then_modes_by_eps():
    layout = ChainLayout((ModelEntry("standard", None, "m.pt"),), MODES, (0.01, 0.06))
    assert layout.image_sets() == [
        "clean",
        "untargeted/eps_0.01",
        "untargeted/eps_0.06",
        "targeted/eps_0.01",
        "targeted/eps_0.06",
    ]
    sets = [f"standard/{rel}" for rel in layout.image_sets()[1:]]
    assert sets == [p for *_, p in layout.adversarial_sets()]
