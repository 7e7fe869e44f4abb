"""FastLimeImage computes what lime's LimeImageExplainer computes, for the same seed."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from lime.lime_image import LimeImageExplainer
from torch import nn

from advinterp.explainers.lime_image import (
    FastLimeImage,
    felzenszwalb_segmenter,
    fudged_image,
    lime_classifier_fn,
    quickshift_segmenter,
)
from tests.explainers.models import synthetic_images, warmed_tiny_resnet

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def image() -> np.ndarray:
    return np.ascontiguousarray(synthetic_images([0])[0].transpose(1, 2, 0))  # (H, W, 3) float32


def _classifier_fn(model: nn.Module):
    return lime_classifier_fn(model)


def _assert_same(fast, ref, label: int) -> None:
    ref_ranked = np.array(ref.local_exp[label], dtype=np.float64)
    np.testing.assert_array_equal(fast.segments, ref.segments)
    assert fast.ranked.shape == ref_ranked.shape
    # Same superpixels in the same order, same weights up to batched-conv float noise.
    np.testing.assert_array_equal(fast.ranked[:10, 0], ref_ranked[:10, 0])
    w_ref = np.zeros(len(ref_ranked))
    w_ref[ref_ranked[:, 0].astype(int)] = ref_ranked[:, 1]
    np.testing.assert_allclose(fast.weights, w_ref, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(fast.intercept, ref.intercept[label], rtol=1e-5, atol=1e-7)
    pos = [f for f, w in ref.local_exp[label] if w > 0][:20]
    np.testing.assert_array_equal(fast.top_positive(20), pos)


@pytest.mark.parametrize(
    "segmenter",
    [
        lambda: quickshift_segmenter(kernel_size=2, max_dist=6, ratio=0.5),
        lambda: felzenszwalb_segmenter(scale=20, sigma=0.5, min_size=5),
    ],
    ids=["quickshift", "felzenszwalb"],
)
def test_matches_the_lime_package_for_the_same_seed(image, segmenter):
    model = warmed_tiny_resnet()
    label = 2
    ref_explainer = LimeImageExplainer(random_state=7)
    fast_explainer = FastLimeImage(model, random_state=7, batch_size=64)
    for _ in range(2):  # the second call continues the same RandomState stream
        ref = ref_explainer.explain_instance(
            image,
            _classifier_fn(model),
            labels=(label,),
            top_labels=None,
            num_samples=150,
            segmentation_fn=segmenter(),
            batch_size=10,
        )
        fast = fast_explainer.explain(image, label, num_samples=150, segmentation_fn=segmenter())
        assert len(np.unique(fast.segments)) >= 10
        _assert_same(fast, ref, label)


def test_package_defaults_and_top_labels_give_the_same_explanation(image):
    """lime's defaults (quickshift 4/200/0.2, seed drawn, top_labels=5) for its best label."""
    model = warmed_tiny_resnet()
    ref = LimeImageExplainer(random_state=3).explain_instance(
        image, _classifier_fn(model), num_samples=60
    )
    label = ref.top_labels[0]
    fast = FastLimeImage(model, random_state=3).explain(image, label, num_samples=60)
    _assert_same(fast, ref, label)


def test_identical_patterns_are_classified_once(image):
    model = warmed_tiny_resnet()
    three = lambda img: (np.arange(img.shape[1])[None, :] * 3 // img.shape[1]).repeat(  # noqa: E731
        img.shape[0], 0
    )
    fast = FastLimeImage(model, random_state=0).explain(
        image, 1, num_samples=100, segmentation_fn=three
    )
    assert fast.num_evaluated <= 8  # 2**3 on/off patterns
    ref = LimeImageExplainer(random_state=0).explain_instance(
        image,
        _classifier_fn(model),
        labels=(1,),
        top_labels=None,
        num_samples=100,
        segmentation_fn=three,
    )
    _assert_same(fast, ref, 1)


def test_fudged_image_is_the_segment_mean_colour(image):
    seg = np.zeros(image.shape[:2], dtype=np.int64)
    seg[:, 16:] = 1
    fudged = fudged_image(image, seg)
    np.testing.assert_allclose(fudged[0, 0], image[:, :16].reshape(-1, 3).mean(0), rtol=1e-5)
    np.testing.assert_allclose(fudged[5, 20], image[:, 16:].reshape(-1, 3).mean(0), rtol=1e-5)


def test_fudged_image_is_bit_identical_to_lime_loop(image):
    noisy = np.clip(image + np.random.default_rng(0).normal(0, 0.3, image.shape), 0, 1)
    noisy = noisy.astype(np.float32)
    segments = quickshift_segmenter(1, 4, 0.5)(noisy)  # hundreds of small superpixels
    want = noisy.copy()
    for x in np.unique(segments):  # lime_image.explain_instance's own loop
        want[segments == x] = (
            np.mean(noisy[segments == x][:, 0]),
            np.mean(noisy[segments == x][:, 1]),
            np.mean(noisy[segments == x][:, 2]),
        )
    assert len(np.unique(segments)) > 100
    np.testing.assert_array_equal(fudged_image(noisy, segments), want)


def test_rejects_channel_first_images(image):
    with pytest.raises(ValueError, match=r"\(H, W, 3\)"):
        FastLimeImage(warmed_tiny_resnet()).explain(image.transpose(2, 0, 1), 0, num_samples=10)


def _bf16_classifier_fn(model: nn.Module):
    """lime's ``classifier_fn`` with the model's forwards under bf16 autocast."""

    def classify(images: np.ndarray) -> np.ndarray:
        x = torch.from_numpy(np.ascontiguousarray(images.transpose(0, 3, 1, 2))).float()
        with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):
            return model(x).float().softmax(1).numpy()

    return classify


def test_bf16_classifies_the_perturbed_images_in_bf16_and_restores_the_model(image):
    model = warmed_tiny_resnet()
    seg = felzenszwalb_segmenter(scale=20, sigma=0.5, min_size=5)
    kw = dict(num_samples=80, segmentation_fn=seg)
    fp32 = FastLimeImage(model, random_state=5).explain(image, 2, **kw)
    bf16 = FastLimeImage(model, random_state=5, precision="bf16").explain(image, 2, **kw)
    # Same draws (segmentation, on/off patterns); only the forwards differ.
    np.testing.assert_array_equal(bf16.segments, fp32.segments)
    np.testing.assert_array_equal(bf16.data, fp32.data)
    assert np.abs(bf16.probs - fp32.probs).max() > 1e-4  # not the fp32 forwards
    # ...but the lime package's with a bf16 classifier (up to bf16's batch-size noise).
    ref = LimeImageExplainer(random_state=5).explain_instance(
        image, _bf16_classifier_fn(model), labels=(2,), top_labels=None, batch_size=100, **kw
    )
    np.testing.assert_array_equal(bf16.segments, ref.segments)
    ref_probs = _bf16_classifier_fn(model)(np.stack([image] * 1))[:, 2]
    assert abs(bf16.probs[0] - ref_probs[0]) < 1e-2  # pattern 0: every superpixel on
    assert abs(bf16.intercept - ref.intercept[2]) < 2e-2
    # The model is as it was: NCHW weights, eval mode.
    assert all(p.is_contiguous() for p in model.parameters())
    assert not model.training
