"""The lan_attacks run: transfer source training, kept examples, the store it writes."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from advinterp.analysis.mask_detection import lan_example_sets
from advinterp.attacks.lan_examples import (
    MEANINGS,
    lan_examples,
    train_transfer_source,
    write_lan_examples,
)
from advinterp.attacks.suite import ATTACKS, perturbation_norms
from advinterp.config.lan_attacks import LanAttacksConfig
from advinterp.data.batches import SplitBatches
from advinterp.data.dataset import TEST
from advinterp.models.classifier import build_classifier
from advinterp.models.predict import predict
from advinterp.store import open_store, sample_chunk_size
from tests.attacks.lan_toy import toy_dataset
from tests.attacks.toy import standard_toy_model
from tests.models.toy_fit import former_fit_split

CPU = torch.device("cpu")
CFG = LanAttacksConfig.model_validate(
    {
        "max_images": 8,
        "jsma_max_images": 4,
        "batch_size": 3,
        "fgsm": {"eps": 0.05},
        "jsma": {"gamma": 0.02, "candidates": 32},
        "cw": {"steps": 5},
        "transfer": {"arch": "tiny_resnet", "epochs": 1, "batch_size": 8},
    }
)


def test_transfer_source_is_the_former_inline_fit(tmp_path):
    """Bitwise the stage's former code: numpy and torch streams both seeded by ``seed``."""
    images, index = toy_dataset(tmp_path / "d.zarr")
    f1 = standard_toy_model()
    torch.manual_seed(3)
    ours, history = train_transfer_source(f1, images, index, CFG.transfer, seed=11, device=CPU)

    torch.manual_seed(3)
    t = CFG.transfer
    data = SplitBatches(images, index.labels, index.split, t.batch_size, sample_chunk_size(images))
    ref = build_classifier(t.arch, 4, f1.mean.flatten().tolist(), f1.std.flatten().tolist())
    ref_history = former_fit_split(ref, data, t, seed=11)
    assert history == ref_history
    for (k, a), b in zip(ours.state_dict().items(), ref.state_dict().values(), strict=True):
        assert torch.equal(a, b), k
    assert torch.equal(ours.mean, f1.mean) and torch.equal(ours.std, f1.std)


@pytest.fixture(scope="module")
def examples(tmp_path_factory):
    images, index = toy_dataset(tmp_path_factory.mktemp("lan") / "d.zarr")
    f1 = standard_toy_model()
    torch.manual_seed(0)
    return images, index, lan_examples(f1, images, index, CFG, seed=0, device=CPU)


def test_kept_examples_fool_f1_and_come_from_correct_test_images(examples):
    images, index, result = examples
    f1 = standard_toy_model()
    a = result.arrays
    assert result.settings == [f"{s}/{k}" for s in ("direct", "transfer") for k in ATTACKS]
    assert set(a) == {"images", *MEANINGS} and len({len(v) for v in a.values()}) == 1
    assert np.all(index.split[a["rows"]] == TEST)
    assert np.array_equal(a["labels"], index.labels[a["rows"]])
    # Every kept example fools f1, and f1 classified its benign original correctly.
    assert np.array_equal(predict(f1, a["images"], 64).numpy(), a["f1_pred"])
    assert np.all(a["f1_pred"] != a["labels"])
    clean = np.asarray(images.get_orthogonal_selection((a["rows"],)))
    assert np.array_equal(predict(f1, clean, 64).numpy(), a["labels"])
    # Direct examples are crafted on f1 itself.
    direct = a["setting"] < len(ATTACKS)
    assert np.array_equal(a["source_pred"][direct], a["f1_pred"][direct])
    for k, v in perturbation_norms(clean, a["images"]).items():
        np.testing.assert_array_equal(v, a[k])
    fgsm = a["setting"] == result.settings.index("direct/fgsm")
    assert np.all(a["linf"][fgsm] <= CFG.fgsm.eps + 1e-6)


def test_metrics_count_what_was_kept(examples):
    result = examples[2]
    m, a = result.metrics, result.arrays
    assert m["source_arch"] == "tiny_resnet"
    assert m["source_val_accuracy"] == result.history[-1]["val_accuracy"]
    for code, name in enumerate(result.settings):
        setting, attack = name.split("/")
        row = m[setting][attack]
        assert row["kept"] == int((a["setting"] == code).sum()) <= row["attacked"]
        if row["attacked"]:
            assert row["fooled_f1"] == pytest.approx(row["kept"] / row["attacked"])
    # At most max_images attacked; JSMA on a subset of them.
    assert 0 < m["direct"]["fgsm"]["attacked"] <= CFG.max_images
    assert m["direct"]["jsma"]["attacked"] <= min(CFG.jsma_max_images, CFG.max_images)
    assert m["direct"]["cw"]["attacked"] == m["direct"]["fgsm"]["attacked"]


def test_store_roundtrip(examples, tmp_path):
    images, _, result = examples
    path = tmp_path / "adversarial.zarr"
    write_lan_examples(path, result, {"note": 1}, sample_chunk_size(images))
    store = open_store(path)
    assert store.attrs["settings"] == result.settings and store.attrs["params"] == {"note": 1}
    for k in ("images", *MEANINGS):
        assert np.array_equal(store[k][:], result.arrays[k]), k
    sets = lan_example_sets(path)
    assert [s.name for s in sets] == result.settings
    for code, s in enumerate(sets):
        sel = result.arrays["setting"] == code
        assert np.array_equal(s.rows, result.arrays["rows"][sel])
        assert np.array_equal(s.f1_pred, result.arrays["f1_pred"][sel])
        assert np.array_equal(s.images, result.arrays["images"][sel])
        assert s.images.shape[1:] == (3, 16, 16)
