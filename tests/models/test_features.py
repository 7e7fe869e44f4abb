"""features_shard_setup: read-ahead and base.precision through the shard computation."""

from __future__ import annotations

import numpy as np
import pytest

from advinterp.models.features import features_shard_setup
from advinterp.store import shard_slices
from tests.conftest import tiny_images_and_model

N, SIZE, CHUNK = 21, 16, 8


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    d = tmp_path_factory.mktemp("features")
    tiny_images_and_model(d, N, SIZE, CHUNK)
    return str(d / "images.zarr"), str(d / "model.pt")


def _all_shards(inputs, precision: str = "fp32", prefetch: bool = False) -> dict[str, np.ndarray]:
    images, model = inputs
    compute = features_shard_setup(images, "images", model, 5, "cpu", precision, prefetch)
    shards = [compute(sl) for sl in shard_slices(N, CHUNK)]
    return {k: np.concatenate([s[k] for s in shards]) for k in ("features", "logits")}


def test_prefetch_gives_bitwise_the_same_arrays(inputs):
    plain, ahead = _all_shards(inputs), _all_shards(inputs, prefetch=True)
    for key in plain:
        np.testing.assert_array_equal(ahead[key], plain[key], err_msg=key)


def test_bf16_shards_are_float32_close_to_fp32(inputs):
    fp32, bf16 = _all_shards(inputs), _all_shards(inputs, "bf16", prefetch=True)
    for key in fp32:
        assert bf16[key].dtype == np.float32 and bf16[key].shape == fp32[key].shape
        assert not np.array_equal(bf16[key], fp32[key])
        np.testing.assert_allclose(bf16[key], fp32[key], atol=0.05 * np.abs(fp32[key]).max())
