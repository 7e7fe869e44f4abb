"""Every registered explainer keeps the Explainer contract (registry-parametrised)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from advinterp.analysis.explainer_ranks import ALL
from advinterp.explainers.guided_backprop import GuidedBackpropExplainer
from advinterp.explainers.lime_image import LimeSettings, quickshift_segmenter
from advinterp.explainers.protocol import ExampleSlice, Explainer, batched_attribution
from advinterp.explainers.saliency import SaliencyExplainer, saliency
from advinterp.explainers.suite import EXPLAINERS, OUTPUTS, REGISTRY, explainers
from tests.explainers.models import warmed_tiny_resnet

pytestmark = pytest.mark.usefixtures("one_thread")

CPU = torch.device("cpu")
LIME = LimeSettings(quickshift_segmenter(2, 6, 0.5), num_samples=20, batch_size=16, top=4)
SUITE = explainers(LIME, batch_size=2)


@pytest.fixture(scope="module")
def batch() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    images = rng.random((3, 3, 16, 16), dtype=np.float32)
    return images, np.array([0, 2, 1], np.int64)


def test_registry_names_are_unique_and_what_the_evaluation_scores():
    assert EXPLAINERS == tuple(cls.name for cls in REGISTRY) == ALL
    assert [type(e) for e in SUITE] == list(REGISTRY)
    keys = [k for cls in REGISTRY for k in cls.outputs]
    assert len(keys) == len(set(keys)) and list(OUTPUTS) == ["explained", *keys]


@pytest.mark.parametrize("explainer", SUITE, ids=EXPLAINERS)
def test_outputs_have_the_declared_keys_dtypes_and_shapes(explainer, batch):
    assert isinstance(explainer, Explainer)
    images, targets = batch
    model = warmed_tiny_resnet(size=16)
    out = explainer.explain(model, images, targets, device=CPU, where=ExampleSlice(seed=1))
    assert set(out) == set(explainer.outputs)
    per_image = {"image": images.shape[1:], "map": images.shape[2:], "rank": (LIME.top,), "one": ()}
    for key, (kind, dtype) in explainer.outputs.items():
        assert out[key].dtype == np.dtype(dtype), key
        assert out[key].shape == (len(images), *per_image[kind]), key


@pytest.mark.parametrize("explainer", SUITE, ids=EXPLAINERS)
def test_model_left_as_found(explainer, batch):
    images, targets = batch
    model = warmed_tiny_resnet(size=16).train()
    model.head.weight.requires_grad_(False)  # a caller's choice that must survive
    relus = [m for m in model.modules() if isinstance(m, torch.nn.ReLU)]
    flags = [m.inplace for m in relus]
    explainer.explain(model, images, targets, device=CPU, where=ExampleSlice(seed=1))
    assert all(m.training for m in model.modules())
    assert not model.head.weight.requires_grad
    assert all(p.requires_grad for n, p in model.named_parameters() if n != "head.weight")
    assert all(p.grad is None for p in model.parameters())
    assert [m.inplace for m in relus] == flags
    assert not any(m._forward_hooks or m._backward_hooks for m in model.modules())


@pytest.mark.parametrize("explainer", SUITE, ids=EXPLAINERS)
def test_pieces_equal_one_call(explainer, batch):
    """Per-example seeds follow ``where.start``: a set explained in pieces is the same."""
    images, targets = batch
    model = warmed_tiny_resnet(size=16)
    where = ExampleSlice(seed=5, image_set=2)
    whole = explainer.explain(model, images, targets, device=CPU, where=where)
    head = explainer.explain(model, images[:2], targets[:2], device=CPU, where=where)
    tail = explainer.explain(
        model, images[2:], targets[2:], device=CPU, where=ExampleSlice(5, 2, start=2)
    )
    for key in whole:
        # Gradient batches differ (2 | 1 against 2 + 1): equal up to float noise only.
        np.testing.assert_allclose(
            np.concatenate([head[key], tail[key]]), whole[key], rtol=1e-5, atol=1e-6
        )


def test_batched_attribution_matches_one_call_and_ignores_batch_size(batch):
    images, targets = batch
    model = warmed_tiny_resnet(size=16)
    direct = saliency(model, torch.from_numpy(images), torch.from_numpy(targets)).numpy()
    for size in (1, 2, 3, 8):
        got = batched_attribution(saliency, model, images, targets, size, CPU)
        assert got.dtype == np.float32
        np.testing.assert_allclose(got, direct, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("cls", [SaliencyExplainer, GuidedBackpropExplainer])
def test_gradient_explainers_are_their_attribution_batched(cls, batch):
    images, targets = batch
    model = warmed_tiny_resnet(size=16)
    out = cls(2).explain(model, images, targets, device=CPU, where=ExampleSlice(seed=1))
    want = batched_attribution(cls.attribution, model, images, targets, 2, CPU)
    assert list(out) == [cls.name]
    np.testing.assert_array_equal(out[cls.name], want)
