"""``dask_scaling``: the attack stage's shard work on 2 Dask workers vs 1, and vs threads.

The attack stage is the heaviest per shard of the shard-mapped stages (IFGSM: every
image costs ``modes x eps x steps`` forward+backward passes; features cost one
forward). The same :class:`advinterp.shards.ShardJob` the stage builds runs on the same
shards four ways, each timed after a warm-up so worker start-up and the per-process
setup (imports, model load) are excluded and reported separately:

- Dask, 1 worker x 1 torch thread;
- Dask, 2 workers x 1 torch thread (``scale.workers: 2``, the default);
- local, this process, 1 torch thread;
- local, this process, 2 torch threads (``base.num_threads: 0`` on 2 cores).

Every torch stage is multi-threaded inside one process (intra-op threads of conv and
matmul kernels), so on 2 cores the fair peer of 2 Dask workers is the local run with
2 threads, not with 1.
"""

from __future__ import annotations

import logging
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from advinterp.attacks.ifgsm_grid import attack_shard_setup, random_targets
from advinterp.config.core import ScaleConfig
from advinterp.config.dataset import SyntheticConfig
from advinterp.data.adversarial import eps_key
from advinterp.data.artifact import write_dataset
from advinterp.data.synthetic import generate
from advinterp.models.checkpoint import save_classifier
from advinterp.models.classifier import build_classifier
from advinterp.shards import ShardJob, dask_session, run_shards
from advinterp.store import create_array, create_group
from bench.rows import Row, throughput_row

log = logging.getLogger("bench.dask_scaling")


def _outputs_like(group, result: dict[str, np.ndarray], n: int, chunk: int) -> dict:
    """Per-sample arrays shaped like one shard's result, ``n`` samples long."""
    return {
        name: create_array(
            group,
            name,
            (n, *np.asarray(a).shape[1:]),
            np.asarray(a).dtype,
            dims=("sample", *(f"d{i}" for i in range(1, np.asarray(a).ndim))),
            chunk_size=chunk,
        )
        for name, a in result.items()
    }


def run(
    n: int = 192,
    chunk: int = 16,
    size: int = 64,
    steps: int = 10,
    eps: tuple[float, ...] = (0.03, 0.06),
) -> list[Row]:
    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as d:
        work = Path(d)
        cfg = SyntheticConfig(num_classes=8, images_per_class=n // 4, families=2)
        ds = generate(cfg, size, seed=0, val_fraction=0.0, test_fraction=0.5)
        write_dataset(work / "dataset.zarr", ds.index, ds, 64, {})
        model_path = work / "model.pt"
        save_classifier(
            model_path, build_classifier("tiny_resnet", 8, (0.485, 0.456, 0.406), (0.229,) * 3)
        )
        rows = np.flatnonzero(ds.index.split == 2)[:n]
        labels = ds.index.labels[rows].astype(np.int64)
        alphas = {eps_key(e): 2.5 * e / steps for e in eps}
        job = ShardJob.of(
            attack_shard_setup,
            str(work / "dataset.zarr"),
            str(model_path),
            8,
            rows,
            labels,
            random_targets(labels, 8, 0),
            eps,
            steps,
            alphas,
            64,
            "cpu",
        )
        probe = job.compute()(slice(0, chunk))
        stores = iter(range(1000))

        def fill(scale: ScaleConfig) -> float:
            group = create_group(work / f"out{next(stores)}.zarr")
            outputs = _outputs_like(group, probe, len(rows), chunk)
            start = time.perf_counter()
            run_shards(outputs, job, len(rows), chunk, scale=scale, desc="bench attack")
            return time.perf_counter() - start

        times: dict[str, float] = {}
        startup: dict[str, float] = {}
        for workers in (1, 2):
            scale = ScaleConfig(executor="dask", workers=workers)
            start = time.perf_counter()
            with dask_session(scale):
                startup[f"dask{workers}"] = time.perf_counter() - start
                fill(scale)  # warm-up: every worker imports and loads the model once
                times[f"dask{workers}"] = min(fill(scale) for _ in range(2))
        saved = torch.get_num_threads()
        try:
            for threads in (1, 2):
                torch.set_num_threads(threads)
                times[f"local{threads}"] = min(fill(ScaleConfig()) for _ in range(2))
        finally:
            torch.set_num_threads(saved)
    log.info("shard-phase seconds %s; Dask session start-up %s", times, startup)
    passes = len(rows) * (2 * len(eps) * (steps + 1) + 1)
    common = (
        f"IFGSM-{steps} x {2 * len(eps)} attacks on {len(rows)} images {size}px in "
        f"{len(rows) // chunk} shards ({passes / times['dask2']:.0f} passes/s); "
        f"one-off Dask+Prefect start-up {startup['dask2']:.0f} s not included"
    )
    local = (
        f"local 1 thread {times['local1']:.1f} s, 2 threads {times['local2']:.1f} s "
        f"(intra-op speed-up {times['local1'] / times['local2']:.2f}x); "
        f"Dask 1 worker {times['dask1']:.1f} s, 2 workers {times['dask2']:.1f} s"
    )
    peers = {  # key in times: (peer, target speed-up of Dask 2 workers over it, note)
        "dask1": ("Dask 1 worker x 1 thread", 1.6, common),
        "local2": ("local, 1 process x 2 torch threads", 1.0, local),
    }
    return [
        throughput_row(
            "attack shards, Dask 2 workers x 1 thread",
            peer,
            "speed-up (throughput ratio)",
            times["dask2"],
            times[key],
            target,
            work=len(rows),
            note=note,
        )
        for key, (peer, target, note) in peers.items()
    ]
