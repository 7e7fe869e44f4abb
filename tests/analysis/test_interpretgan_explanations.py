"""igan_explain's library: picking the examples, every array of Figures 3/5, the store."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import zarr
from torch import nn

from advinterp.analysis.interpretgan_explanations import (
    DIMS,
    explain_examples,
    explain_model,
    pick_examples,
    write_explanations,
)
from advinterp.config.igan_explain import IganExplainConfig
from advinterp.data.artifact import DatasetArtifact
from advinterp.data.dataset import TEST, TRAIN
from advinterp.errors import DatasetError
from advinterp.explainers.captum_baselines import BASELINES
from advinterp.explainers.interpretgan import InterpretGAN
from advinterp.models.pooling_cnn import build_pooling_cnn, latent_fn
from tests.data.indexes import toy_index

CPU = torch.device("cpu")
pytestmark = pytest.mark.usefixtures("one_thread_per_module")


class BrightestChannel(nn.Module):
    """f(x) = the channel with the largest mean."""

    def forward(self, x):
        return x.mean((2, 3))


def _one_hot_images(channels: list[int]) -> np.ndarray:
    x = np.zeros((len(channels), 3, 4, 4), np.float32)
    for i, c in enumerate(channels):
        x[i, c] = 1.0
    return x


def test_pick_examples_by_hand():
    images = _one_hot_images([0, 1, 0, 2, 1, 2, 0])
    labels = np.array([1, 1, 0, 2, 1, 2, 0])  # row 0 is misclassified
    rows = np.array([0, 1, 2, 3, 4, 5, 6])
    model = BrightestChannel()
    # First correct row of each class, in row order: class 1 -> 1, class 0 -> 2, class 2 -> 3.
    got = pick_examples(model, images, labels, rows, 2, chunk_size=3, device=CPU)
    assert got.tolist() == [1, 2]
    assert pick_examples(model, images, labels, rows, 5, chunk_size=3, device=CPU).tolist() == [
        1,
        2,
        3,
    ]  # fewer classes than asked: all of them
    assert pick_examples(model, images, labels, rows[3:], 1, chunk_size=2, device=CPU).tolist() == [
        3
    ]
    with pytest.raises(DatasetError, match="no test image"):
        pick_examples(model, images, labels, np.array([0]), 1, chunk_size=2, device=CPU)


def _model_and_gans():
    torch.manual_seed(0)
    model = build_pooling_cnn(
        "max", 3, (0.5,) * 3, (0.3,) * 3, widths=(2, 3), fc_width=4, input_size=8
    ).eval()
    probe = torch.rand(1, 3, 16, 16)
    shapes = {k: v.shape[1:] for k, v in latent_fn(model)(probe).items()}
    gans = {
        layer: InterpretGAN(
            layer, shapes[layer], 16, channels=3, code_dim=4, compress_width=2, gen_width=2,
            disc_width=2, gen_size=8,
        ).eval()
        for layer in ("conv1", "fc1", "fc3")
    }  # fmt: skip
    return model, gans


CFG = IganExplainConfig(
    examples=2, eps=0.05, steps=2, ig_steps=3, occlusion_window=8, occlusion_stride=8
)


def test_explain_model_arrays():
    model, gans = _model_and_gans()
    x = torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(2))
    out = explain_model(model, gans, x, CFG, seed=1)
    assert set(out) == set(DIMS)
    for name, arr in out.items():
        assert arr.ndim == len(DIMS[name]), name
    assert out["explanations"].shape == (2, 2, 3, 3, 16, 16)
    assert out["baselines"].shape == (2, 2, len(BASELINES), 16, 16)
    adv = torch.as_tensor(out["adversarial"])
    assert float((adv - x).abs().max()) <= CFG.eps + 1e-6
    assert adv.min() >= 0.0 and adv.max() <= 1.0
    with torch.no_grad():
        assert out["predictions"][:, 0].tolist() == model(x).argmax(1).tolist()
        assert out["predictions"][:, 1].tolist() == model(adv).argmax(1).tolist()
        e = torch.as_tensor(out["explanations"])
        classes = model(e.flatten(0, 2)).argmax(1).view(2, 2, 3)
        assert out["explanation_classes"].tolist() == classes.tolist()
        fc3 = gans["fc3"](latent_fn(model)(adv)["fc3"])
    np.testing.assert_allclose(out["explanations"][:, 1, 2], fc3.numpy(), atol=1e-6)
    again = explain_model(model, gans, x, CFG, seed=1)
    assert all(np.array_equal(out[k], again[k]) for k in out)


def test_explain_examples_and_store_round_trip(tmp_path):
    model, gans = _model_and_gans()
    images = np.random.default_rng(0).uniform(0, 1, (8, 3, 16, 16)).astype(np.float32)
    with torch.no_grad():
        labels = model(torch.as_tensor(images)).argmax(1).numpy()  # every image correct
    index = toy_index(labels, [TRAIN] * 4 + [TEST] * 4, ["a", "b", "c"], attribute="z")
    found = explain_examples(
        {"natural": (model, gans), "robust": (model, gans)},
        DatasetArtifact(index, images, 4),
        CFG,
        seed=0,
        device=CPU,
    )
    first = {}
    for r in range(4, 8):  # first test row of each class
        first.setdefault(int(labels[r]), r)
    assert found.rows.tolist() == sorted(first.values())[:2]
    np.testing.assert_array_equal(found.images, images[found.rows])
    assert found.layers == ["conv1", "fc1", "fc3"] and found.methods == list(BASELINES)
    assert list(found.results) == ["natural", "robust"]

    write_explanations(tmp_path / "e.zarr", found, params={"k": 1})
    root = zarr.open_group(str(tmp_path / "e.zarr"), mode="r")
    assert root.attrs["rows"] == found.rows.tolist()
    assert root.attrs["inputs"] == ["natural", "adversarial"]
    assert root.attrs["layers"] == found.layers and root.attrs["params"] == {"k": 1}
    np.testing.assert_array_equal(root["images"][...], found.images)
    for kind in ("natural", "robust"):
        for name, arr in found.results[kind].items():
            np.testing.assert_array_equal(root[f"{kind}/{name}"][...], arr)
