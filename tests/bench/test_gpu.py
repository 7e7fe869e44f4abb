"""bench.gpu works before anyone spends GPU time on it: every measurement at toy sizes on
the CPU, and a clear refusal where there is no CUDA."""

from __future__ import annotations

import math
import subprocess
import sys

import pytest
import torch

from bench import gpu
from bench.__main__ import BENCHMARKS, default_names
from tests.conftest import ROOT


@pytest.fixture(scope="module")
def rows():
    return gpu.main(["--device", "cpu", "--tiny"])


def test_every_measurement_gives_its_rows_at_tiny_size_on_cpu(rows):
    stages = [r.stage for r in rows]
    arch = gpu.TINY.arch
    for label in (
        f"features ({arch}, {gpu.TINY.size}px)",
        f"attack (IFGSM-{gpu.TINY.steps}, {arch})",
        f"detect (Faster R-CNN, {gpu.TINY.detector_backbone} FPN)",
    ):
        for precision in ("fp32", "bf16"):
            assert f"{label} {precision}" in stages, (label, precision)
    peers = {(r.stage, r.peer) for r in rows}
    assert (f"attack (IFGSM-{gpu.TINY.steps}, {arch}) bf16", "torchattacks BIM") in peers
    assert any(r.measure == "top-1 agreement (fraction equal)" for r in rows)
    assert sum(r.measure == "throughput ratio (bf16/fp32)" for r in rows) == 4
    for r in rows:
        assert math.isfinite(r.ratio) and r.ratio > 0, r


def test_the_detector_is_the_cub_runs_at_the_benchmarks_backbone():
    spec = gpu.detector_spec(gpu.FULL)
    assert spec.backbone == "resnet50" and spec.image_size == 224
    assert (spec.num_classes, spec.num_attributes) == (15, 312)
    assert len(spec.anchor_sizes) == 5


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_bench_gpu_without_cuda_exits_nonzero_with_one_clear_line():
    proc = subprocess.run(
        [sys.executable, "-m", "bench", "gpu"], cwd=ROOT, capture_output=True, text=True
    )
    assert proc.returncode != 0
    assert proc.stderr.strip().splitlines()[-1].startswith("bench gpu: needs a CUDA device")
    assert "Traceback" not in proc.stderr


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_a_plain_bench_run_skips_gpu_without_cuda():
    assert "gpu" in BENCHMARKS
    assert default_names() == [n for n in BENCHMARKS if n != "gpu"]
