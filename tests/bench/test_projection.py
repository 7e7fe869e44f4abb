"""The real run's projection counts what the params say (bench/projection.py)."""

from __future__ import annotations

from bench.projection import CUB_TEST, markdown, project


def _params(eps: int, robust: int, max_images: int | None) -> dict:
    return {
        "dataset": {"image_size": 10, "val_fraction": 0.5},
        "train": {"epochs": 2},
        "attack": {"eps": [0.01] * eps, "steps": 3, "max_images": max_images},
        "adv_train": {"eps": [0.1] * robust, "epochs": 1, "steps": 4},
    }


def test_attack_counts_images_eps_modes_models_and_sizes_by_the_storage_ratio():
    bench = {"storage": {"rows": [{"measure": "adversarial images per MiB", "ratio": 4.0}]}}
    rows = {r.stage: r for r in project(_params(eps=2, robust=1, max_images=5), bench)}
    # 5 images x 2 eps x 2 modes x 2 models = 40 images of 3x10x10 float32 (1200 B)
    assert rows["attack"].passes.startswith("120 forward+backward (40 images")
    assert rows["attack"].stored == "0 MB as float32, 0 MB relative to the clean images"
    assert rows["adv_train"].passes.startswith(f"{1 * 1 * 2997 * 5:,} forward+backward")
    every = {r.stage: r for r in project(_params(eps=1, robust=0, max_images=None), {})}
    assert every["attack"].passes.startswith(f"{CUB_TEST * 2 * 3:,} forward+backward")
    assert "relative" not in every["attack"].stored  # no storage row measured: no claim
    assert "awaits" in markdown(list(every.values()), gpu_measured=False)
