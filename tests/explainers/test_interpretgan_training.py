"""igan_train's library: one InterpretGAN per layer (seeding, warm start), the natural and
robust pooling CNN with their GANs, and the checkpoint directory's round trip."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch

from advinterp.config.igan_train import IganGanParams, IganTrainConfig
from advinterp.data.artifact import DatasetArtifact
from advinterp.data.dataset import TEST, TRAIN, VAL, AttributeIndex
from advinterp.errors import CheckpointError
from advinterp.explainers.interpretgan import explain
from advinterp.explainers.interpretgan_training import (
    GAN_SHUFFLE_BUFFER,
    MODELS,
    gans_path,
    load_igan_gans,
    load_igan_model,
    load_igan_models,
    model_path,
    save_igan_models,
    train_gans,
    train_igan_models,
)
from advinterp.models.pooling_cnn import build_pooling_cnn, latent_fn, train_classifier
from tests.data.indexes import toy_index

pytestmark = pytest.mark.usefixtures("one_thread_per_module")

SIZE, CLASSES = 16, 3
CPU = torch.device("cpu")


def _images(n: int = 30, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(0, 1, (n, 3, SIZE, SIZE)).astype(np.float32)


def _model() -> torch.nn.Module:
    torch.manual_seed(0)
    return build_pooling_cnn(
        "max", CLASSES, (0.5,) * 3, (0.3,) * 3, widths=(2, 3), fc_width=4, input_size=8
    ).eval()


def _gan_params(**kw) -> IganGanParams:
    base = dict(
        layers=("conv2", "fc1"),
        code_dim=4,
        compress_width=2,
        gen_width=2,
        disc_width=2,
        gen_size=8,
        epochs=1,
        batch_size=8,
        warm_start=False,
    )
    return IganGanParams(**{**base, **kw})


def _train(params: IganGanParams, seed: int = 3):
    return train_gans(
        _model(), _images(), np.arange(20), params, chunk_size=8, seed=seed, device=CPU
    )


def _same(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    pairs = zip(a.state_dict().values(), b.state_dict().values(), strict=True)
    return all(torch.equal(v, w) for v, w in pairs)


def test_gans_come_back_per_layer_in_forward_order_and_deterministic():
    gans, hist = _train(_gan_params(warm_start=True))
    assert list(gans) == ["conv2", "fc1"] and list(hist) == ["conv2", "fc1"]
    assert all(len(h) == 1 and h[0]["epoch"] == 1 for h in hist.values())
    assert all(not g.training and g.layer == k for k, g in gans.items())
    again, _ = _train(_gan_params(warm_start=True))
    assert all(_same(gans[k], again[k]) for k in gans)
    assert GAN_SHUFFLE_BUFFER == 4096


def test_each_layer_is_seeded_by_its_own_index():
    """Without warm start a layer's GAN depends only on (seed, its index in layers)."""
    both, _ = _train(_gan_params(layers=("conv2", "fc1")))
    alone, _ = _train(_gan_params(layers=("conv2",)))
    assert _same(both["conv2"], alone["conv2"])  # index 0 in both
    fc1_first, _ = _train(_gan_params(layers=("fc1",)))
    assert not _same(both["fc1"], fc1_first["fc1"])  # index 1 vs 0: another seed


def test_warm_start_trains_the_deepest_layer_first_and_hands_g_d_down():
    cold, _ = _train(_gan_params())
    warm, _ = _train(_gan_params(warm_start=True))
    assert _same(warm["fc1"], cold["fc1"])  # trained first either way, same seed + 1
    assert not _same(warm["conv2"].generator, cold["conv2"].generator)


def test_classifier_is_left_as_it_was():
    model = _model()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    train_gans(model, _images(), np.arange(20), _gan_params(), chunk_size=8, seed=0, device=CPU)
    assert not model.training
    for k, v in model.state_dict().items():
        torch.testing.assert_close(v, before[k], rtol=0, atol=0, msg=k)


def _index(n: int) -> AttributeIndex:
    split = np.full(n, TRAIN, dtype=np.int8)
    split[16:20], split[20:] = VAL, TEST
    return toy_index(np.arange(n) % CLASSES, split, [f"c{i}" for i in range(CLASSES)])


def _cfg() -> IganTrainConfig:
    return IganTrainConfig.model_validate(
        {
            "classifier": {
                "widths": [2, 3],
                "fc_width": 4,
                "input_size": 8,
                "epochs": 1,
                "batch_size": 8,
            },
            "adversarial": {"steps": 1},
            "gan": {
                "layers": ["conv1", "fc3"],
                "code_dim": 4,
                "compress_width": 2,
                "gen_width": 2,
                "disc_width": 2,
                "gen_size": 8,
                "epochs": 2,
                "batch_size": 8,
            },
        }
    )


@pytest.fixture(scope="module")
def trained():
    images, index = _images(), _index(30)
    with torch.random.fork_rng():
        return (
            images,
            index,
            train_igan_models(DatasetArtifact(index, images, 8), _cfg(), seed=5, device=CPU),
        )


def test_train_igan_models_tables_and_metrics(trained):
    images, index, t = trained
    assert list(t.models) == list(MODELS) and list(t.gans["robust"]) == ["conv1", "fc3"]
    assert list(t.history.columns[:3]) == ["epoch", "natural_loss", "robust_loss"]
    assert set(t.history.columns) == {"epoch"} | {
        f"{k}_{c}" for k in MODELS for c in ("loss", "train_accuracy", "val_accuracy", "lr")
    }
    assert list(t.gan_history.columns) == [
        "epoch",
        "natural_conv1",
        "natural_fc3",
        "robust_conv1",
        "robust_fc3",
    ]
    assert t.gan_history["epoch"].tolist() == [1, 2]
    m = t.metrics
    assert m["pooling"] == "max" and m["chance"] == pytest.approx(1 / 3)
    for kind in MODELS:  # test accuracy recomputed independently on the 10 test rows
        with torch.no_grad():
            pred = t.models[kind](torch.as_tensor(images[20:])).argmax(1).numpy()
        assert m[kind]["test_accuracy"] == pytest.approx(np.mean(pred == index.labels[20:]))
        assert m[kind]["val_accuracy"] == t.history[f"{kind}_val_accuracy"].iloc[-1]
        assert set(m[kind]["gan"]) == {"conv1", "fc3"}
        li = m[kind]["gan"]["fc3"]["interpretability"]
        assert li == t.gan_history[f"{kind}_fc3"].iloc[-1] and li <= 0


def test_natural_model_is_the_recipe_classifier(trained):
    images, index, t = trained
    mean, std = t.models["natural"].mean.flatten().tolist(), t.models["natural"].std
    natural, _ = train_classifier(
        _cfg(),
        "max",
        {"widths": (2, 3), "fc_width": 4, "input_size": 8, "batch_norm": True},
        images,
        index.labels,
        index.split,
        CLASSES,
        mean=mean,
        std=std.flatten().tolist(),
        chunk_size=8,
        robust=False,
        seed=5,
        device=CPU,
    )
    assert _same(natural, t.models["natural"])
    assert not _same(t.models["robust"], t.models["natural"])  # PGD training changed it


def test_checkpoint_directory_round_trip(tmp_path, trained):
    images, _, t = trained
    save_igan_models(tmp_path, t, params={"p": 1}, seed=5)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "natural.pt",
        "natural_gans.pt",
        "robust.pt",
        "robust_gans.pt",
    ]
    assert model_path(tmp_path, "robust") == tmp_path / "robust.pt"
    assert gans_path(tmp_path, "robust") == tmp_path / "robust_gans.pt"
    loaded = load_igan_models(tmp_path, CPU)
    assert list(loaded) == list(MODELS)
    x = torch.as_tensor(images[:4])
    for kind, (model, gans) in loaded.items():
        assert _same(model, t.models[kind]) and model.architecture["pooling"] == "max"
        for layer, gan in gans.items():
            want = explain(t.gans[kind][layer], latent_fn(t.models[kind]), x)
            torch.testing.assert_close(explain(gan, latent_fn(model), x), want, rtol=0, atol=0)
    with pytest.raises(CheckpointError, match="missing.pt"):
        load_igan_model(tmp_path, "missing", CPU)
    shutil.copy(model_path(tmp_path, "natural"), gans_path(tmp_path, "odd"))
    with pytest.raises(CheckpointError, match="odd_gans.pt"):  # a classifier is no GAN state
        load_igan_gans(tmp_path, "odd", CPU)
