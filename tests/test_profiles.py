"""advinterp.profiles: where a profile's and a seed's outputs live."""

from __future__ import annotations

from pathlib import Path

import pytest

from advinterp.profiles import expand_seeds, locate, seed_list


def test_locate_puts_the_profile_after_the_top_folder_and_the_seed_in_the_stage_folder():
    assert locate("artifacts/fit/model.pt") == "artifacts/fit/model.pt"
    assert locate("artifacts/fit/model.pt", "digits") == "artifacts/digits/fit/model.pt"
    assert locate("artifacts/fit/sub/m.json", None, 2) == "artifacts/fit/seed_2/sub/m.json"
    assert locate("data/d.zarr", "digits") == "data/digits/d.zarr"
    assert (
        locate("artifacts/fit/m.json", "digits", "${item}")
        == "artifacts/digits/fit/seed_${item}/m.json"
    )
    with pytest.raises(ValueError, match="stage's directory"):
        locate("data/d.zarr", None, 0)


def test_a_seed_list_in_a_path_expands_to_each_seeds_path():
    path = locate("artifacts/fit/m.json", "digits", seed_list([0, 3, 10]))
    assert path == "artifacts/digits/fit/seed_0,3,10/m.json"
    assert expand_seeds(path) == {
        0: Path("artifacts/digits/fit/seed_0/m.json"),
        3: Path("artifacts/digits/fit/seed_3/m.json"),
        10: Path("artifacts/digits/fit/seed_10/m.json"),
    }
    # One seed's path, or no seed at all: one path, read as it is.
    assert expand_seeds("artifacts/fit/seed_4/m.json") == {
        None: Path("artifacts/fit/seed_4/m.json")
    }
    assert expand_seeds("artifacts/fit/m.json") == {None: Path("artifacts/fit/m.json")}
