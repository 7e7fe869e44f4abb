"""SJE (Eqs. 3-6): the loss and update by hand, the two fitters agree, it learns."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from advinterp.config.dataset import SyntheticConfig
from advinterp.data.synthetic import generate
from advinterp.embedding.sje import (
    class_embeddings,
    compatibility,
    fit_sje,
    fit_sje_reference,
    most_violated,
    normalise_features,
    predict_attributes,
    predict_classes,
    sje_accuracy,
    sje_step,
)
from advinterp.models.classifier import build_classifier
from advinterp.models.features import features_and_logits
from advinterp.models.training import make_optimizer
from tests.models.toy_fit import fit_in_memory, numpy_order

pytestmark = pytest.mark.usefixtures("one_thread_per_module")


def test_class_embeddings_centre_then_unit_rows():
    att = np.array([[1.0, 0.0, 0.5], [0.0, 1.0, 0.5], [0.0, 0.0, 0.5]])
    phi = class_embeddings(att, center=True)
    centred = att - att.mean(0)
    expected = centred / np.linalg.norm(centred, axis=1, keepdims=True)
    np.testing.assert_allclose(phi.numpy(), expected, rtol=1e-6)
    np.testing.assert_allclose(phi.norm(dim=1).numpy(), 1.0, rtol=1e-6)
    raw = class_embeddings(att, center=False)
    np.testing.assert_allclose(raw[0].numpy(), np.array([1.0, 0.0, 0.5]) / np.sqrt(1.25), rtol=1e-6)


def test_most_violated_by_hand():
    scores = torch.tensor([[2.0, 1.5, 0.0], [0.0, 3.0, 1.0], [1.0, 1.0, 5.0]])
    labels = torch.tensor([0, 1, 0])
    loss, worst = most_violated(scores, labels, margin=1.0)
    # sample 0: augmented [2, 2.5, 1] -> y*=1, loss 2.5-2 = 0.5
    # sample 1: augmented [1, 3, 2]   -> y*=1 (true), loss 0
    # sample 2: augmented [1, 2, 6]   -> y*=2, loss 6-1 = 5
    torch.testing.assert_close(loss, torch.tensor([0.5, 0.0, 5.0]))
    assert worst.tolist() == [1, 1, 2]


def test_sje_step_is_eq6_averaged_over_the_batch():
    torch.manual_seed(0)
    W = torch.randn(4, 3)
    x = torch.randn(5, 4)
    phi = class_embeddings(torch.rand(3, 3), center=False)
    labels = torch.tensor([0, 1, 2, 0, 1])
    expected = W.clone()
    scores = x @ W @ phi.T
    for n in range(5):
        aug = scores[n] + 1.0
        aug[labels[n]] -= 1.0
        y_star = int(aug.argmax())
        if y_star != int(labels[n]):
            expected += 0.1 / 5 * torch.outer(x[n], phi[labels[n]] - phi[y_star])
    sje_step(W, x, labels, phi, lr=0.1)
    torch.testing.assert_close(W, expected)


def test_nearest_embedding_is_argmax_compatibility():
    torch.manual_seed(1)
    phi = class_embeddings(torch.rand(6, 5), center=True)
    x, W = torch.randn(20, 8), torch.randn(8, 5)
    a = predict_attributes(x, W)
    nearest = torch.cdist(a, phi).argmin(1)
    assert torch.equal(predict_classes(x, W, phi), nearest)
    torch.testing.assert_close(compatibility(x, W, phi), a @ phi.T)


def _planted(n: int, seed: int, W_true: torch.Tensor, phi: torch.Tensor):
    """Features whose true class is argmax θᵀ W_true φ(y) with a clear margin."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.arange(n) % phi.shape[0]
    # θ = W_true φ(y) + noise (W_true orthonormal columns): θᵀ W_true φ(c) = φ(y)·φ(c) + ε
    x = phi[labels] @ W_true.T + 0.05 * torch.randn(n, W_true.shape[0], generator=g)
    return x, labels


def test_recovers_a_planted_linear_compatibility():
    g = torch.Generator().manual_seed(0)
    D, A, C = 12, 8, 6
    W_true, _ = torch.linalg.qr(torch.randn(D, A, generator=g))
    phi = class_embeddings(torch.rand(C, A, generator=g), center=True)
    x, y = _planted(600, 1, W_true, phi)
    vx, vy = _planted(120, 2, W_true, phi)
    tx, ty = _planted(300, 3, W_true, phi)
    assert sje_accuracy(tx, ty, W_true, phi) == 1.0
    fitted = fit_sje(
        x, y, phi, val_x=vx, val_labels=vy, lr=0.5, epochs=50, batch_size=32, patience=10,
        generator=torch.Generator().manual_seed(0),
    )  # fmt: skip
    assert sje_accuracy(tx, ty, fitted.W, phi) >= 0.98
    # the learnt compatibility F(x, y) matches the planted one up to scale (per-sample
    # shifts do not affect the ranking, so rows are centred before comparing)
    fit_scores, true_scores = compatibility(tx, fitted.W, phi), compatibility(tx, W_true, phi)
    fit_scores = fit_scores - fit_scores.mean(1, keepdim=True)
    true_scores = true_scores - true_scores.mean(1, keepdim=True)
    cos = torch.nn.functional.cosine_similarity(fit_scores.flatten(), true_scores.flatten(), dim=0)
    assert cos > 0.9, float(cos)
    # predicted attributes θ(x)W land nearest their class embedding
    pred_att = predict_attributes(tx, fitted.W)
    assert (torch.cdist(pred_att, phi).argmin(1) == ty).float().mean() >= 0.98


def test_minibatch_of_one_equals_per_sample_reference():
    g = torch.Generator().manual_seed(4)
    phi = class_embeddings(torch.rand(4, 5, generator=g), center=True)
    x, y = torch.randn(40, 6, generator=g), torch.arange(40) % 4
    kw = dict(val_x=x[:10], val_labels=y[:10], lr=0.05, epochs=3, patience=5, margin=1.0)
    fast = fit_sje(x, y, phi, batch_size=1, generator=torch.Generator().manual_seed(9), **kw)
    ref = fit_sje_reference(x, y, phi, generator=torch.Generator().manual_seed(9), **kw)
    torch.testing.assert_close(fast.W, ref.W, rtol=1e-5, atol=1e-6)
    assert [h["loss"] for h in fast.history] == pytest.approx([h["loss"] for h in ref.history])


def test_early_stopping_keeps_the_best_validation_epoch():
    g = torch.Generator().manual_seed(5)
    phi = class_embeddings(torch.rand(3, 4, generator=g), center=True)
    x, y = torch.randn(30, 5, generator=g), torch.arange(30) % 3
    vx, vy = torch.randn(30, 5, generator=g), torch.arange(30) % 3  # unrelated: val is noise
    fitted = fit_sje(
        x, y, phi, val_x=vx, val_labels=vy, lr=0.1, epochs=50, batch_size=8, patience=3,
        generator=torch.Generator().manual_seed(0),
    )  # fmt: skip
    assert len(fitted.history) < 50
    best = max(h["val_accuracy"] for h in fitted.history)
    assert fitted.best_val_accuracy == best
    assert sje_accuracy(vx, vy, fitted.W, phi) == pytest.approx(best)


@pytest.fixture(scope="module")
def embedded_features():
    """θ(x) of a small embedded (synthetic attribute) dataset through a trained tiny_resnet."""
    torch.manual_seed(0)
    cfg = SyntheticConfig(mode="coarse", num_classes=4, images_per_class=40, families=2, clutter=2)
    ds = generate(cfg, 24, seed=0, val_fraction=0.2, test_fraction=0.3)
    images = ds.load(range(ds.index.num_samples))
    idx, y = ds.index, torch.as_tensor(ds.index.labels)
    rows = {s: np.flatnonzero(idx.split == s) for s in (0, 1, 2)}
    model = build_classifier("tiny_resnet", 4, (0.5,) * 3, (0.25,) * 3)
    fit_in_memory(
        model,
        images,
        y,
        [(images[rows[1]], y[rows[1]])],
        numpy_order(rows[0]),
        epochs=10,
        optimizer=make_optimizer(model, "sgd", 0.05, 0.9, 5e-4),
    )
    feats, _ = features_and_logits(model, images, 64, torch.device("cpu"))
    return feats, idx, rows


def test_classifies_clean_embedded_features_well_above_chance(embedded_features):
    feats, idx, rows = embedded_features
    x = normalise_features(feats, "l2")
    y = torch.as_tensor(idx.labels)
    phi = class_embeddings(idx.class_attributes, center=True)
    fitted = fit_sje(
        x[rows[0]], y[rows[0]], phi, val_x=x[rows[1]], val_labels=y[rows[1]], lr=0.1,
        epochs=60, batch_size=32, patience=15, generator=torch.Generator().manual_seed(0),
    )  # fmt: skip
    test_acc = sje_accuracy(x[rows[2]], y[rows[2]], fitted.W, phi)
    assert test_acc >= 0.55 > 2 * (1 / 4), test_acc  # chance 0.25
