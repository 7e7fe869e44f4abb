"""Which image sets the detector runs on, and the detections store's sets."""

from __future__ import annotations

import numpy as np
import pytest
import zarr
from zarr.storage import MemoryStore

from advinterp.data.adversarial import ChainLayout, ModelEntry
from advinterp.detection.artifact import read_detection_set, write_detections
from advinterp.detection.attribute_rcnn import Detections
from advinterp.detection.chain_sets import chain_sets
from advinterp.errors import ParamError, StoreError
from advinterp.store import create_group, write_array

MODELS = (
    ModelEntry("standard", None, "m.pt"),
    ModelEntry("at_0.02", 0.02, "a.pt"),
    ModelEntry("at_0.06", 0.06, "b.pt"),
)
EPS = (0.03, 0.06)


@pytest.fixture
def attack(tmp_path):
    layout = ChainLayout(MODELS, ("untargeted", "targeted"), EPS)
    group = create_group(tmp_path / "attack.zarr", layout.to_attrs())
    write_array(group, "rows", np.array([7, 2, 5]), dims=("sample",), chunk_size=4)
    for _, _, _, path in layout.adversarial_sets():
        x = np.zeros((3, 3, 4, 4), np.float32)
        write_array(group, f"{path}/images", x, dims=("sample", "c", "y", "x"), chunk_size=4)
    return tmp_path / "attack.zarr", group


def test_clean_then_both_modes_of_the_standard_and_the_nearest_at_model(attack, tmp_path):
    path, group = attack
    sets = chain_sets(tmp_path / "data.zarr", path, group, 0.03, "auto")
    assert sets.at_model == "at_0.02" and sets.eps_key == "eps_0.03"  # |0.01| < |0.03|
    assert sets.names == [
        "clean",
        "standard/untargeted",
        "standard/targeted",
        "at_0.02/untargeted",
        "at_0.02/targeted",
    ]
    clean, adv = sets.sets[0], sets.sets[3]
    assert clean.store == tmp_path / "data.zarr" and clean.array == "images"
    np.testing.assert_array_equal(clean.rows, [7, 2, 5])  # the dataset, at the attacked rows
    assert adv.store == path and adv.array == "at_0.02/untargeted/eps_0.03/images"
    assert adv.rows is None  # the attack store, in its own order
    named = chain_sets(tmp_path / "data.zarr", path, group, 0.03, "at_0.06")
    assert named.at_model == "at_0.06"


def test_refusals_name_the_param_or_the_array(attack, tmp_path):
    path, group = attack
    with pytest.raises(ParamError, match=r"detect.eps: 0.05 is not in .*\[0.03, 0.06\]"):
        chain_sets(tmp_path / "data.zarr", path, group, 0.05, "auto")
    with pytest.raises(ParamError, match="detect.at_model: .*not among"):
        chain_sets(tmp_path / "data.zarr", path, group, 0.06, "standard")
    del group["at_0.06/targeted/eps_0.06/images"]
    with pytest.raises(StoreError, match="missing array 'at_0.06/targeted/eps_0.06/images'"):
        chain_sets(tmp_path / "data.zarr", path, group, 0.06, "auto")


def test_read_detection_set_round_trip_and_missing_set():
    store = zarr.open_group(store=MemoryStore(), mode="w", zarr_format=3)
    det = Detections(
        offsets=np.array([0, 2, 2, 3]),
        xyxy=np.random.default_rng(0).random((3, 4), dtype=np.float32),
        part=np.array([0, 4, 1]),
        score=np.array([0.9, 0.5, 0.3], np.float32),
        attribute_scores=np.full((3, 5), 0.5, np.float32),
    )
    write_detections(store.require_group("standard/untargeted"), det, 2)
    back = read_detection_set(store, "standard/untargeted")
    for key in ("offsets", "xyxy", "part", "score", "attribute_scores"):
        np.testing.assert_array_equal(getattr(back, key), getattr(det, key), err_msg=key)
    with pytest.raises(StoreError, match="no image set 'clean'; rerun detect"):
        read_detection_set(store, "clean")
