"""All of Göpfert et al.'s explainers on one small batch: shapes, classes, padding, seeds."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from lime.lime_image import LimeImageExplainer

from advinterp.explainers.lime_image import (
    LimeSettings,
    lime_classifier_fn,
    lime_seed,
    quickshift_segmenter,
)
from advinterp.explainers.suite import explain_images
from advinterp.models.classifier import build_classifier
from tests.explainers.models import synthetic_images

pytestmark = pytest.mark.usefixtures("one_thread")


def test_explain_images_shapes_classes_and_lime_reproducible_by_the_package():
    torch.manual_seed(0)
    model = build_classifier("tiny_resnet", 4, (0.5, 0.5, 0.5), (0.25, 0.25, 0.25)).eval()
    images = synthetic_images([0, 3], size=24)
    seg = quickshift_segmenter(2, 6, 0.5)
    out = explain_images(
        model,
        images,
        lime=LimeSettings(seg, num_samples=30, batch_size=16, top=50),
        batch_size=2,
        device=torch.device("cpu"),
        seed=3,
        image_set=1,
    )
    with torch.no_grad():
        np.testing.assert_array_equal(out["explained"], model(torch.from_numpy(images)).argmax(1))
    assert out["saliency"].shape == out["guided_backprop"].shape == images.shape
    assert out["random"].shape == (2, 24, 24) and out["lime_segments"].shape == (2, 24, 24)
    assert out["lime_top"].shape == (2, 50)
    for i in range(2):
        ids = out["lime_top"][i]
        kept = ids[ids >= 0]
        assert (ids[len(kept) :] == -1).all() and len(kept) < out["lime_num_segments"][i]
        assert (out["lime_weights"][i, : len(kept)] > 0).all()
        # The stored seed reproduces the explanation with the lime package itself.
        assert out["lime_seed"][i] == lime_seed(3, 1, i)
        hwc = np.ascontiguousarray(images[i].transpose(1, 2, 0))
        label = int(out["explained"][i])
        ref = LimeImageExplainer(random_state=int(out["lime_seed"][i])).explain_instance(
            hwc,
            lime_classifier_fn(model),
            labels=(label,),
            top_labels=None,
            num_samples=30,
            segmentation_fn=seg,
        )
        pos = [f for f, w in ref.local_exp[label] if w > 0][:50]
        np.testing.assert_array_equal(kept, pos)


def test_a_set_explained_in_pieces_equals_one_call():
    """Seeds follow the position in the set (``start``), not in the call: shards agree."""
    torch.manual_seed(0)
    model = build_classifier("tiny_resnet", 4, (0.5, 0.5, 0.5), (0.25, 0.25, 0.25)).eval()
    images = synthetic_images([0, 3, 5], size=24)
    kw = {
        "lime": LimeSettings(quickshift_segmenter(2, 6, 0.5), num_samples=20, batch_size=20),
        "batch_size": 1,  # the gradient explainers then see the same batches too
        "device": torch.device("cpu"),
        "seed": 3,
        "image_set": 2,
    }
    whole = explain_images(model, images, **kw)
    pieces = [
        explain_images(model, images[:1], **kw),
        explain_images(model, images[1:], start=1, **kw),
    ]
    for key, values in whole.items():
        np.testing.assert_array_equal(np.concatenate([p[key] for p in pieces]), values, key)
    # Distinct examples get distinct random draws (not one stream restarted per call).
    assert not np.array_equal(whole["random"][0], whole["random"][1])
    assert len(set(whole["lime_seed"].tolist())) == 3
