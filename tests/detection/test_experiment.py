"""The train_detector experiment: seeded training, scores per part, checkpoints, refusals."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
import zarr
from zarr.storage import MemoryStore

from advinterp.config.dataset import SyntheticConfig
from advinterp.config.train_detector import DetectorModelConfig, TrainDetectorConfig
from advinterp.data.dataset import TRAIN
from advinterp.data.synthetic import generate
from advinterp.detection.attribute_rcnn import build_detector, save_detector
from advinterp.detection.experiment import (
    detector_spec,
    initial_detector,
    train_and_score,
)
from advinterp.errors import CheckpointError, DatasetError
from advinterp.store import write_array

SIZE = 32
CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def tiny():
    cfg = SyntheticConfig(num_classes=4, images_per_class=8, families=2, clutter=1)
    ds = generate(cfg, SIZE, seed=0, val_fraction=0.0, test_fraction=0.5)
    group = zarr.open_group(store=MemoryStore(), mode="w", zarr_format=3)
    pixels = ds.load(range(ds.index.num_samples))
    images = write_array(group, "images", pixels, dims=("sample", "c", "y", "x"), chunk_size=8)
    return ds.index, images


def _cfg(**kw) -> TrainDetectorConfig:
    return TrainDetectorConfig(**{"epochs": 1, "batch_size": 8, "eval_images": 8, **kw})


def _run(tiny, cfg: TrainDetectorConfig, seed: int = 0):
    index, images = tiny
    torch.manual_seed(seed)  # the stage runner seeds torch: the initial weights
    return train_and_score(images, index, cfg, seed, CPU)


def test_seeded_run_repeats_bit_for_bit_and_scores_every_part(tiny):
    index, _ = tiny
    a, b = _run(tiny, _cfg()), _run(tiny, _cfg())
    assert a.history.equals(b.history)
    for (ka, va), (kb, vb) in zip(
        a.model.state_dict().items(), b.model.state_dict().items(), strict=True
    ):
        assert ka == kb and torch.equal(va, vb), ka
    ma = {k: v for k, v in a.metrics.items() if k != "train_seconds"}
    assert ma == {k: v for k, v in b.metrics.items() if k != "train_seconds"}

    m = a.metrics
    assert set(m["ap"]) == set(index.part_names) == set(m["recall"])
    assert m["train_images"] == int(np.sum(index.split == TRAIN)) == 16
    assert m["eval_images"] == 8 and m["epochs"] == 1
    assert m["final_loss"] == a.history["loss"].iloc[-1]
    assert list(a.history["epoch"]) == [1]
    assert {"loss", "loss_attributes", "loss_classifier", "lr"} <= set(a.history.columns)
    assert not a.model.training  # returned ready for inference


def test_max_train_images_draws_a_stratified_subset(tiny):
    run = _run(tiny, _cfg(max_train_images=8, eval_images=4))
    assert run.metrics["train_images"] == 8 and run.metrics["eval_images"] == 4


def test_zero_epochs_uses_the_checkpoint_as_is(tiny, tmp_path):
    index, _ = tiny
    spec = detector_spec(index, (SIZE, SIZE), DetectorModelConfig())
    torch.manual_seed(3)
    saved = build_detector(spec).eval()
    save_detector(tmp_path / "det.pt", saved)
    run = _run(tiny, _cfg(epochs=0, weights=tmp_path / "det.pt"))
    assert run.history.empty and list(run.history.columns) == ["epoch", "loss"]
    assert run.metrics["final_loss"] is None
    for k, v in saved.state_dict().items():
        assert torch.equal(v, run.model.state_dict()[k]), k


def test_checkpoint_for_other_parts_is_refused(tiny, tmp_path):
    index, _ = tiny
    spec = dataclasses.replace(
        detector_spec(index, (SIZE, SIZE), DetectorModelConfig()), num_classes=3
    )
    save_detector(tmp_path / "other.pt", build_detector(spec))
    with pytest.raises(CheckpointError, match="3 parts"):
        initial_detector(
            detector_spec(index, (SIZE, SIZE), DetectorModelConfig()), tmp_path / "other.pt", CPU
        )


def test_dataset_without_part_boxes_is_refused(tiny):
    index, images = tiny
    with pytest.raises(DatasetError, match="here.zarr: no part boxes"):
        train_and_score(
            images, dataclasses.replace(index, boxes=None), _cfg(), 0, CPU, origin="here.zarr"
        )


def test_detector_spec_takes_the_image_size_unless_set(tiny):
    index, _ = tiny
    spec = detector_spec(index, (32, 48), DetectorModelConfig())
    assert spec.image_size == 48
    assert spec.class_names == tuple(index.part_names)
    assert spec.num_attributes == len(index.attribute_names)
    assert detector_spec(index, (32, 48), DetectorModelConfig(image_size=64)).image_size == 64
