"""The explained image sets: LIME settings, IFGSM selection, set assembly, store layout."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import zarr

from advinterp.config.explain import ExplainConfig
from advinterp.data.adversarial import ChainLayout, ModelEntry
from advinterp.errors import ParamError, StoreError
from advinterp.explainers.image_sets import (
    explain_shard_setup,
    explanation_arrays,
    gather_sets,
    ifgsm_selection,
    lime_settings,
    write_set,
)
from advinterp.explainers.suite import OUTPUTS, explain_images
from advinterp.models.checkpoint import save_classifier
from advinterp.store import create_group, write_array
from tests.explainers.models import warmed_tiny_resnet

pytestmark = pytest.mark.usefixtures("one_thread")
ORIGIN = Path("attack.zarr")


def _group() -> zarr.Group:
    return zarr.open_group(zarr.storage.MemoryStore(), mode="w", zarr_format=3)


def _put(group: zarr.Group, name: str, values: np.ndarray) -> None:
    dims = ("sample", "channel", "y", "x")[: np.ndim(values)]
    write_array(group, name, np.asarray(values), dims=dims, chunk_size=4)


def _attack(success: list[bool], rows: list[int]) -> zarr.Group:
    """An attack store with the standard model's untargeted set at eps 0.06 (and 0.01)."""
    layout = ChainLayout((ModelEntry("standard", None, "m.pt"),), ("untargeted",), (0.01, 0.06))
    g = _group()
    g.attrs.update(layout.to_attrs())
    _put(g, "rows", np.array(rows, np.int64))
    for *_, path in layout.adversarial_sets():
        sub = g.require_group(path)
        n = len(rows)
        _put(sub, "success", np.array(success, bool))
        _put(
            sub,
            "images",
            np.arange(n, dtype=np.float32)[:, None, None, None] * np.ones((n, 3, 2, 2), np.float32),
        )
    return g


def test_lime_settings_follow_the_segmentation_choice():
    q = lime_settings(
        ExplainConfig(
            lime_segmentation="quickshift", lime_num_samples=7, lime_batch_size=3, lime_top=4
        ),
        "bf16",
    )
    assert (q.num_samples, q.batch_size, q.top, q.precision) == (7, 3, 4, "bf16")
    assert q.segmentation_fn.algo_type == "quickshift"
    f = lime_settings(
        ExplainConfig(), "fp32"
    )  # the default (lime_study: quickshift fails on the noise)
    assert f.segmentation_fn.algo_type == "felzenszwalb"
    assert f.segmentation_fn.target_params["min_size"] == 10


def test_ifgsm_selection_prefers_localized_sources_then_store_order_sorted():
    attack = _attack([True, False, True, True, True], rows=[10, 11, 12, 13, 14])
    cfg = ExplainConfig(ifgsm_images=3, ifgsm_eps=0.06)
    # Successes at positions 0, 2, 3, 4; rows 14 and 12 are localized sources: first.
    pos, images = ifgsm_selection(attack, cfg, np.array([12, 14]), ORIGIN)
    np.testing.assert_array_equal(pos, [0, 2, 4])
    assert images.dtype == np.float32 and images[:, 0, 0, 0].tolist() == [0.0, 2.0, 4.0]


def test_ifgsm_selection_errors_name_the_param_and_the_store():
    attack = _attack([True], rows=[1])
    with pytest.raises(ParamError, match=r"explain.ifgsm_eps=0.03: attack.zarr holds eps"):
        ifgsm_selection(attack, ExplainConfig(ifgsm_eps=0.03), np.array([1]), ORIGIN)
    with pytest.raises(StoreError, match="attack.zarr: missing the standard model's targeted"):
        ifgsm_selection(
            attack, ExplainConfig(ifgsm_eps=0.06, ifgsm_mode="targeted"), np.array([1]), ORIGIN
        )


def _localized_and_dataset() -> tuple[zarr.Group, zarr.Group]:
    dataset = _group()
    _put(dataset, "labels", np.arange(20, dtype=np.int64) % 4)
    _put(
        dataset,
        "images",
        np.arange(20, dtype=np.float32)[:, None, None, None] * np.ones((20, 3, 2, 2), np.float32),
    )
    loc = _group()
    _put(loc, "images", np.full((3, 3, 2, 2), 0.5, np.float32))
    _put(loc, "rows", np.array([12, 12, 14], np.int64))
    _put(loc, "labels", np.array([0, 0, 2], np.int64))
    _put(loc, "region", np.ones((3, 2, 2), np.uint8))
    _put(loc, "source_rows", np.array([12, 14], np.int64))
    return loc, dataset


def test_gather_sets_clean_union_and_clean_index():
    loc, dataset = _localized_and_dataset()
    attack = _attack([True, True, False, True], rows=[3, 12, 13, 17])
    sets = gather_sets(loc, dataset, ExplainConfig(ifgsm_images=2, ifgsm_eps=0.06), attack, ORIGIN)
    assert list(sets) == ["localized", "ifgsm", "clean"]
    np.testing.assert_array_equal(sets["ifgsm"]["rows"], [3, 12])  # 12 preferred, then 3
    np.testing.assert_array_equal(sets["clean"]["rows"], [3, 12, 14])
    np.testing.assert_array_equal(sets["clean"]["images"][:, 0, 0, 0], [3, 12, 14])
    np.testing.assert_array_equal(sets["clean"]["labels"], [3, 0, 2])
    np.testing.assert_array_equal(sets["localized"]["clean_index"], [1, 1, 2])
    np.testing.assert_array_equal(sets["ifgsm"]["clean_index"], [0, 1])
    # Without the attack store (or with no IFGSM images) only localized and clean.
    for kw in ({"attack": None}, {"attack": attack, "cfg": ExplainConfig(ifgsm_images=0)}):
        args = {"cfg": ExplainConfig(ifgsm_eps=0.06), **kw}
        sets = gather_sets(loc, dataset, args["cfg"], args["attack"], ORIGIN)
        assert list(sets) == ["localized", "clean"]
        np.testing.assert_array_equal(sets["clean"]["rows"], [12, 14])


def test_write_set_and_explanation_arrays_layout():
    root = _group()
    group = write_set(root, "clean", {"rows": [4, 5], "images": np.zeros((2, 3, 5, 6))}, 4)
    assert group["images"].attrs["dims"] == ["sample", "channel", "y", "x"]
    assert group["rows"][:].tolist() == [4, 5]
    arrays = explanation_arrays(group, 2, 3, 5, 6, top=7, chunk=4)
    assert list(arrays) == list(OUTPUTS)
    assert arrays["saliency"].shape == (2, 3, 5, 6) and arrays["random"].shape == (2, 5, 6)
    assert arrays["lime_top"].shape == (2, 7) and arrays["explained"].shape == (2,)
    assert arrays["lime_seed"].dtype == np.uint32
    assert arrays["lime_top"].attrs["dims"] == ["sample", "rank"]


def test_shard_setup_computes_what_explain_images_gives(tmp_path):
    model = warmed_tiny_resnet(size=8)
    save_classifier(tmp_path / "m.pt", model)
    images = np.random.default_rng(0).random((3, 3, 8, 8), dtype=np.float32)
    root = create_group(tmp_path / "out.zarr")
    write_set(root, "ifgsm", {"images": images}, 4)
    cfg = ExplainConfig(lime_num_samples=10, lime_top=3, batch_size=2)
    compute = explain_shard_setup(
        str(tmp_path / "out.zarr"),
        "ifgsm",
        str(tmp_path / "m.pt"),
        cfg.model_dump(),
        4,
        "cpu",
        "fp32",
    )
    got = compute(slice(1, 3))
    want = explain_images(
        model,
        images[1:3],
        lime=lime_settings(cfg, "fp32"),
        batch_size=2,
        device=torch.device("cpu"),
        seed=4,
        image_set=2,
        start=1,
    )
    assert list(got) == list(OUTPUTS)
    for key, values in want.items():
        np.testing.assert_array_equal(got[key], values, key)
