"""What decides LIME's Table 1 rank on the localized attacks (Göpfert et al. Sec. 4).

LIME's explanation of size n is a union of n superpixels, so how its superpixels compare
with the attacked region C decides how well it can score: superpixels much larger than C
cannot overlap it tightly, many tiny ones each barely move the prediction. The paper
remarks that LIME's default segmentation differs from the attack's ("almost impossible
for LIME to achieve perfect scores"). This experiment re-explains the same localized
adversarial examples with several segmentations and the readings of classic saliency
(:data:`~advinterp.explainers.saliency.SaliencyForm`), and for every pair reports the
Table 1 mean ranks (:func:`~advinterp.analysis.localization_study.table1`, the
``explain_eval`` computation) beside the superpixel and region sizes.

Seeds follow the ``explain`` stage (:class:`~advinterp.explainers.protocol.ExampleSlice`
of the localized set at each example's position), so with its sample count, images and
segmentation a row reproduces ``explain_eval``'s Table 1.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from matplotlib.figure import Figure
from skimage.segmentation import find_boundaries
from torch import nn

from advinterp.analysis.explainer_ranks import ALL, RANKED, table1, tie_break
from advinterp.explainers.guided_backprop import GuidedBackpropExplainer
from advinterp.explainers.image_sets import SET_CODES
from advinterp.explainers.lime_image import (
    PACKAGE_QUICKSHIFT,
    LimeExplainer,
    LimeSettings,
    felzenszwalb_segmenter,
    quickshift_segmenter,
)
from advinterp.explainers.protocol import Example, ExampleSlice
from advinterp.explainers.random_baseline import RandomExplainer
from advinterp.explainers.saliency import SaliencyExplainer, SaliencyForm
from advinterp.models.predict import predict

log = logging.getLogger(__name__)

SegmentFn = Callable[[np.ndarray], np.ndarray]


def fixed_segments(segments: np.ndarray) -> SegmentFn:
    """A LIME ``segmentation_fn`` that returns ``segments`` whatever the image.

    Shape:
        segments: (H, W) int; the returned function maps (H, W, 3) -> (H, W) int64.
    """
    out = np.asarray(segments).astype(np.int64)
    return lambda image: out.copy()


def study_segmenters(
    names: Sequence[str],
    *,
    quickshift: tuple[float, float, float],
    felzenszwalb: tuple[float, float, int],
    attack: tuple[float, float, int],
    attack_segments: np.ndarray,
    sources: np.ndarray,
) -> dict[str, list[SegmentFn]]:
    """One LIME segmenter per studied image for each named segmentation.

    Args:
        names: of ``lime_study.segmentations``.
        quickshift: (kernel_size, max_dist, ratio) of ``explain``.
        felzenszwalb: (scale, sigma, min_size) of ``explain``.
        attack: (scale, sigma, min_size) the localized attack segmented with.
        attack_segments: (N_clean, H, W) int, the attack's segments of each clean image.
        sources: (E,) the clean image of each studied example (row of ``attack_segments``).
    """
    shared = {
        "quickshift": quickshift_segmenter(*quickshift),
        "quickshift_lime": quickshift_segmenter(**PACKAGE_QUICKSHIFT),
        "felzenszwalb": felzenszwalb_segmenter(*felzenszwalb),
        "felzenszwalb_attack": felzenszwalb_segmenter(*attack),
    }
    return {
        name: (
            [fixed_segments(attack_segments[s]) for s in sources]
            if name == "attack_segments"
            else [shared[name]] * len(sources)
        )
        for name in names
    }


def study_positions(available: int, num_images: int) -> np.ndarray:
    """``num_images`` positions of a set of ``available``, evenly spaced (all when fewer).

    Spacing keeps examples of every source image: a set lists each source's regions together.
    Shape: (min(num_images, available),) int64, sorted, unique.
    """
    if available <= num_images:
        return np.arange(available, dtype=np.int64)
    return np.unique(np.linspace(0, available - 1, num_images).round().astype(np.int64))


def segment_stats(
    segments: np.ndarray, regions: np.ndarray, lime_top: np.ndarray
) -> dict[str, float]:
    """Superpixel sizes beside attacked-region sizes, in pixels.

    ``oracle_jaccard_median``: per image the best Jaccard index (Eq. 2) any one
    superpixel reaches with C, median over images: how well the segmentation can
    express the region at all.

    Shape:
        segments: (E, H, W) int; regions: (E, H, W) bool; lime_top: (E, T) int, -1 padded.
    """
    areas, top1, oracle, counts = [], [], [], []
    for seg, region, top in zip(segments, regions, lime_top, strict=True):
        flat = seg.reshape(-1).astype(np.int64)
        area = np.bincount(flat)
        inside = np.bincount(flat[region.reshape(-1)], minlength=len(area))
        present = area > 0
        areas.append(area[present])
        counts.append(int(present.sum()))
        union = area + region.sum() - inside
        oracle.append(float((inside[present] / union[present]).max()))
        if top[0] >= 0:
            top1.append(int(area[top[0]]))
    return {
        "superpixels_mean": float(np.mean(counts)),
        "superpixel_area_median": float(np.median(np.concatenate(areas))),
        "top1_area_median": float(np.median(top1)) if top1 else float("nan"),
        "region_area_median": float(np.median(regions.reshape(len(regions), -1).sum(1))),
        "oracle_jaccard_median": float(np.median(oracle)),
    }


@dataclass(frozen=True)
class LimeStudy:
    """What ``lime_study`` reports.

    Attributes:
        table: one row per (segmentation, saliency form): segment stats, LIME's positive
            superpixels, explanations ranked, and the Jaccard mean ranks among
            :data:`RANKED` (``rank_*``, Table 1) and among :data:`ALL` (``rank4_*``).
        metrics: the same nested, with the Hamming ranks, and the images studied.
        figure: superpixel boundaries and region C of a few examples per segmentation.
    """

    table: pd.DataFrame
    metrics: dict[str, Any]
    figure: Figure


def lime_study(
    model: nn.Module,
    images: np.ndarray,
    regions: np.ndarray,
    positions: np.ndarray,
    *,
    segmentations: Mapping[str, Sequence[SegmentFn]],
    saliency_forms: Sequence[SaliencyForm],
    num_samples: int,
    lime_batch_size: int,
    top: int,
    max_superpixels: int,
    batch_size: int,
    seed: int,
    device: torch.device,
    figure_examples: int = 2,
) -> LimeStudy:
    """Table 1 of the localized examples for every segmentation and saliency form.

    Each image is explained for the class the model predicts (as ``explain`` does), by
    guided backprop and the random baseline once, by saliency once per form and by LIME
    once per segmentation; every (segmentation, form) pair is then scored by
    :func:`~advinterp.analysis.localization_study.table1`.

    Args:
        positions: each image's position in the localized set (seeds LIME and random).
        segmentations: name -> one LIME ``segmentation_fn`` per image.
        top: LIME superpixels kept (``explain.lime_top``); max_superpixels: n_max.

    Shape:
        images: (E, 3, H, W) float32 in [0, 1]; regions: (E, H, W) bool; positions: (E,).
    """
    E, _, h, w = images.shape
    regions = np.asarray(regions).astype(bool)
    code = SET_CODES["localized"]
    explained = predict(model, images, batch_size, device).numpy().astype(np.int64)
    where = ExampleSlice(seed, code)
    maps = {
        form: SaliencyExplainer(batch_size, form).explain(
            model, images, explained, device=device, where=where
        )["saliency"]
        for form in saliency_forms
    }
    gbp = GuidedBackpropExplainer(batch_size).explain(
        model, images, explained, device=device, where=where
    )["guided_backprop"]
    rand = RandomExplainer()
    random = np.stack(
        [
            rand.explain_example(
                _example(model, images, explained, device, seed, code, positions, i)
            )["random"]
            for i in range(E)
        ]
    )
    tie = tie_break(seed, (h, w))

    rows: list[dict[str, Any]] = []
    per_seg: dict[str, dict[str, Any]] = {}
    lime_out: dict[str, np.ndarray] = {}
    for name, fns in segmentations.items():
        start = time.perf_counter()
        lime = [
            LimeExplainer(LimeSettings(fns[i], num_samples, lime_batch_size, top)).explain_example(
                _example(model, images, explained, device, seed, code, positions, i)
            )
            for i in range(E)
        ]
        segments = np.stack([r["lime_segments"] for r in lime])
        lime_top = np.stack([r["lime_top"] for r in lime])
        lime_out[name] = segments
        stats = segment_stats(segments, regions, lime_top)
        stats["lime_positive_mean"] = float(np.mean((lime_top[:, :max_superpixels] >= 0).sum(1)))
        per_seg[name] = {**stats, "saliency": {}}
        for form in saliency_forms:
            scored = table1(
                {
                    "region": regions,
                    "lime_segments": segments,
                    "lime_top": lime_top,
                    "saliency": maps[form],
                    "guided_backprop": gbp,
                    "random": random,
                },
                max_superpixels,
                tie,
            )
            per_seg[name]["saliency"][form] = {
                "explanations_ranked": scored.ranked,
                "mean_rank": scored.mean_rank,
                "mean_rank_with_random": scored.mean_rank_with_random,
            }
            rows.append(
                {
                    "segmentation": name,
                    "saliency": form,
                    **stats,
                    "explanations_ranked": scored.ranked,
                    **{f"rank_{x}": scored.mean_rank[x]["jaccard"] for x in RANKED},
                    **{f"rank4_{x}": scored.mean_rank_with_random[x]["jaccard"] for x in ALL},
                }
            )
        log.info(
            "%s: %.1f superpixels, median area %.0f px (region %.0f px), LIME rank %s (%.1f s)",
            name,
            stats["superpixels_mean"],
            stats["superpixel_area_median"],
            stats["region_area_median"],
            ", ".join(
                f"{f} {per_seg[name]['saliency'][f]['mean_rank']['lime']['jaccard']:.2f}"
                for f in saliency_forms
            ),
            time.perf_counter() - start,
        )
    metrics = {
        "images": E,
        "positions": positions.tolist(),
        "lime_num_samples": num_samples,
        "max_superpixels": max_superpixels,
        "region_area_median": float(np.median(regions.reshape(E, -1).sum(1))),
        "settings": per_seg,
    }
    fig = segments_figure(images, regions, lime_out, figure_examples)
    return LimeStudy(pd.DataFrame(rows), metrics, fig)


def _example(
    model: nn.Module,
    images: np.ndarray,
    targets: np.ndarray,
    device: torch.device,
    seed: int,
    code: int,
    positions: np.ndarray,
    i: int,
) -> Example:
    return Example(model, images[i], int(targets[i]), device, seed, code, int(positions[i]))


def segments_figure(
    images: np.ndarray, regions: np.ndarray, segments: Mapping[str, np.ndarray], examples: int
) -> Figure:
    """Rows: examples; columns: segmentations. Superpixel borders white, region C red.

    Shape:
        images: (E, 3, H, W); regions: (E, H, W) bool; segments values: (E, H, W) int.
    """
    k = min(examples, len(images))
    names = list(segments)
    fig, axes = plt.subplots(k, len(names), figsize=(2.2 * len(names), 2.3 * k), squeeze=False)
    for r in range(k):
        for c, name in enumerate(names):
            rgb = np.clip(images[r].transpose(1, 2, 0), 0.0, 1.0).copy()
            rgb[find_boundaries(segments[name][r], mode="inner")] = 1.0
            rgb[find_boundaries(regions[r], mode="inner")] = (1.0, 0.0, 0.0)
            ax = axes[r, c]
            ax.imshow(rgb, interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(name, fontsize=8)
    fig.suptitle("LIME superpixels (white) and the attacked region C (red)", fontsize=9)
    fig.tight_layout()
    return fig
