"""``features``: stage throughput vs the bare forward; peak memory at two dataset sizes."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

from advinterp.models.checkpoint import save_classifier
from advinterp.models.classifier import build_classifier
from advinterp.store import atomic_output, create_array, create_group, shard_slices
from bench.rows import Row, interleaved_best

_CHILD = """
import resource, sys, time
sys.argv = ["features", "--params", sys.argv[1], "--images", sys.argv[2], "--model", sys.argv[3], "--out", sys.argv[4]]
from stages import features
t = time.perf_counter()
features.main(features.build().parse_args())
print(time.perf_counter() - t, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def _images_store(path: Path, n: int, size: int, chunk: int) -> None:
    rng = np.random.default_rng(0)
    with atomic_output(path) as tmp:
        arr = create_array(
            create_group(tmp),
            "images",
            (n, 3, size, size),
            "float32",
            dims=("sample", "channel", "y", "x"),
            chunk_size=chunk,
        )
        for sl in shard_slices(n, chunk):
            arr[sl] = rng.random((sl.stop - sl.start, 3, size, size), dtype=np.float32)


def _run_stage(work: Path, images: Path, model: Path, batch: int) -> tuple[float, float]:
    params = work / "params.yaml"
    params.write_text(json.dumps({"base": {"device": "cpu"}, "features": {"batch_size": batch}}))
    out = work / f"out-{images.stem}.zarr"
    proc = subprocess.run(
        [sys.executable, "-c", _CHILD, str(params), str(images), str(model), str(out)],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).resolve().parents[1],
    )
    seconds, rss_kb = proc.stdout.split()[-2:]
    return float(seconds), float(rss_kb) / 1024


def run(size: int = 64, n_small: int = 1024, n_large: int = 4096, batch: int = 128) -> list[Row]:
    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as d:
        work = Path(d)
        model_path = work / "model.pt"
        model = build_classifier("tiny_resnet", 20, (0.5,) * 3, (0.25,) * 3).eval()
        save_classifier(model_path, model)
        small, large = work / "small.zarr", work / "large.zarr"
        _images_store(small, n_small, size, 64)
        _images_store(large, n_large, size, 64)

        # Peer: the bare forward (features + head) on the same batches, already in memory.
        data = torch.from_numpy(
            np.random.default_rng(0).random((n_small, 3, size, size), dtype=np.float32)
        )

        @torch.no_grad()
        def bare() -> None:
            for s in range(0, n_small, batch):
                model.head(model.features(data[s : s + batch]))

        stage_small = []

        def stage() -> None:
            stage_small.append(_run_stage(work, small, model_path, batch))

        best = interleaved_best({"bare": bare, "stage": stage}, repeat=3)
        # The stage's own timer excludes interpreter start-up and imports.
        stage_s = min(s for s, _ in stage_small)
        _, rss_small = min(stage_small)
        _, rss_large = _run_stage(work, large, model_path, batch)
    del best["stage"]
    return [
        Row(
            "features",
            "bare forward, same batches",
            "time ratio (stage/bare)",
            stage_s,
            best["bare"],
            1.15,
            higher_is_better=False,
            note=f"{n_small} images {size}px, batch {batch}; stage {n_small / stage_s:.0f} img/s",
        ),
        Row(
            "features",
            f"peak RSS at {n_small} images",
            f"peak RSS ratio ({n_large}/{n_small} images)",
            rss_large,
            rss_small,
            1.10,
            higher_is_better=False,
            note=f"{rss_small:.0f} MiB vs {rss_large:.0f} MiB",
        ),
    ]
