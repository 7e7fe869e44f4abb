"""Göpfert et al. Sec. 4's attack campaign: which images, which regions, which outcomes.

Chooses test images neither labelled nor predicted as the one target class (correctly
classified ones first), segments each with Felzenszwalb-Huttenlocher, attacks up to
``max_regions`` of its largest regions one at a time with :func:`localized_bim`, and
tallies the outcomes. Only the successful attempts are kept (with their regions, the
ground truth for explainers); failed and stalled ones are counted.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch
import zarr
from torch import nn

from advinterp.attacks.localized import (
    FAILED,
    OUTCOMES,
    STALLED,
    SUCCESS,
    largest_regions,
    localized_bim,
    segment_regions,
)
from advinterp.config.classes import resolve_class
from advinterp.config.localized_attack import LocalizedAttackConfig
from advinterp.data.batches import iter_batches
from advinterp.errors import ParamError
from advinterp.models.predict import predict
from advinterp.progress import track
from advinterp.store import sample_chunk_size, write_array

log = logging.getLogger(__name__)


def choose_images(
    labels: np.ndarray, pred: np.ndarray, rows: np.ndarray, target: int, n: int, seed: int
) -> np.ndarray:
    """Up to ``n`` of ``rows`` neither labelled nor predicted as the target (sorted).

    Correctly classified images are taken first, in seeded random order
    (``default_rng([seed, 5])``); misclassified ones fill up only when too few are
    correct (a weak model).

    Shape:
        labels: (R,) int64 over all dataset rows; rows: (M,) int64; pred: (M,) int64
        predictions on ``rows``. returns: (<= n,) int64 sorted rows.
    """
    lab = labels[rows]
    usable = (lab != target) & (pred != target)
    rng = np.random.default_rng([seed, 5])
    right = rng.permutation(rows[usable & (pred == lab)])
    wrong = rng.permutation(rows[usable & (pred != lab)])
    return np.sort(np.concatenate([right, wrong])[:n])


def predict_rows(
    model: nn.Module, images: zarr.Array, rows: np.ndarray, batch_size: int, device: torch.device
) -> np.ndarray:
    """Predictions for ``images[rows]`` (sorted rows), read shard by shard.

    Shape:
        images: (R, 3, H, W) float32 in [0, 1]; rows: (M,) sorted. returns: (M,) int64.
    """
    out = [
        predict(model, x, batch_size, device)
        for _, x in iter_batches(images, rows, batch_size, sample_chunk_size(images))
    ]
    return torch.cat(out).numpy() if out else np.zeros(0, np.int64)


@dataclass(frozen=True)
class LocalizedAttacks:
    """Every attempt of a campaign: A attempts on I images, successful or not.

    Shape:
        source_rows: (I,) int64 sorted dataset rows of the attacked images.
        images: (I, 3, H, W) float32 in [0, 1] those images; segments: (I, H, W) int64.
        source: (A,) int64 index into ``source_rows``; rank: (A,) int64, 0 = the
        image's largest region; region: (A, H, W) bool the attacked region C.
        adversarial: (A, 3, H, W) float32 in [0, 1]; outcome, steps, pred: (A,) int64;
        target_prob: (A,) float32.
    """

    target: int
    source_rows: np.ndarray
    images: np.ndarray
    segments: np.ndarray
    source: np.ndarray
    rank: np.ndarray
    region: np.ndarray
    adversarial: np.ndarray
    outcome: np.ndarray
    steps: np.ndarray
    target_prob: np.ndarray
    pred: np.ndarray

    @property
    def kept(self) -> np.ndarray:
        """(S,) int64 positions of the successful attempts."""
        return np.flatnonzero(self.outcome == SUCCESS)

    @property
    def region_pixels(self) -> np.ndarray:
        """(A,) int64 |C| of each attempt."""
        return self.region.reshape(len(self.region), -1).sum(1)

    @property
    def linf(self) -> np.ndarray:
        """(A,) float32 |x' - x|_inf of each attempt."""
        n = len(self.outcome)
        if not n:
            return np.zeros(0, np.float32)
        return np.abs(self.adversarial - self.images[self.source]).reshape(n, -1).max(1)

    def attempts_table(self) -> pd.DataFrame:
        """One row per attempt: dataset row, region rank and size, outcome, steps, result."""
        return pd.DataFrame(
            {
                "row": self.source_rows[self.source],
                "region_rank": self.rank,
                "region_pixels": self.region_pixels,
                "outcome": [OUTCOMES[int(o)] for o in self.outcome],
                "steps": self.steps,
                "target_prob": self.target_prob,
                "pred": self.pred,
            }
        )

    def metrics(self) -> dict[str, Any]:
        """Success statistics; means over the successful attempts (None without any)."""
        n, keep = len(self.outcome), self.kept
        pixels, total = self.region_pixels, self.images.shape[2] * self.images.shape[3]
        some = len(keep) > 0
        return {
            "images": len(self.source_rows),
            "attempts": n,
            "successes": len(keep),
            "failed": int((self.outcome == FAILED).sum()),
            "stalled": int((self.outcome == STALLED).sum()),
            "success_rate": len(keep) / n if n else 0.0,
            "mean_steps": float(self.steps[keep].mean()) if some else None,
            "mean_region_fraction": float(pixels[keep].mean() / total) if some else None,
            "mean_linf": float(self.linf[keep].mean()) if some else None,
            "mean_target_prob": float(self.target_prob[keep].mean()) if some else None,
            "target": self.target,
        }


def localized_campaign(
    model: nn.Module,
    images: zarr.Array,
    labels: np.ndarray,
    rows: np.ndarray,
    class_names: Sequence[str],
    cfg: LocalizedAttackConfig,
    *,
    seed: int,
    device: torch.device,
) -> LocalizedAttacks:
    """Choose images among ``rows``, attack their largest regions towards ``cfg.target``.

    Attempts are attacked in batches of ``cfg.batch_size`` in image, then region order.

    Raises:
        ParamError: the target is no class of ``class_names``, or every candidate is of the target class.

    Shape:
        images: (R, 3, H, W) float32 in [0, 1], every dataset row; labels: (R,) int64;
        rows: (M,) sorted candidate rows (the test split).
    """
    target = resolve_class(cfg.target, class_names, "localized_attack.target")
    pred = predict_rows(model, images, rows, cfg.batch_size, device)
    chosen = choose_images(labels, pred, rows, target, cfg.num_images, seed)
    if len(chosen) == 0:
        raise ParamError(
            "every test image is labelled or predicted as class "
            f"localized_attack.target={cfg.target}: nothing to attack"
        )
    x_all = np.asarray(images.get_orthogonal_selection((chosen,)), np.float32)

    seg_cfg = cfg.segmentation
    segments, attempts = [], []  # attempts: (image index, region rank, mask)
    for i, img in enumerate(x_all):
        seg = segment_regions(img, seg_cfg.scale, seg_cfg.sigma, seg_cfg.min_size)
        segments.append(seg)
        for rank, mask in enumerate(largest_regions(seg, cfg.max_regions, cfg.max_region_fraction)):
            attempts.append((i, rank, mask))
    log.info("%d images, %d attempts towards class %d", len(chosen), len(attempts), target)

    n = len(attempts)
    adv = np.zeros((n, *x_all.shape[1:]), np.float32)
    outcome, steps = np.zeros(n, np.int64), np.zeros(n, np.int64)
    prob, adv_pred = np.zeros(n, np.float32), np.zeros(n, np.int64)
    batches = range(0, n, cfg.batch_size)
    for s in track(batches, total=len(batches), desc="localized BIM", unit="batch"):
        part = attempts[s : s + cfg.batch_size]
        x = torch.as_tensor(x_all[[a[0] for a in part]], device=device)
        masks = torch.as_tensor(np.stack([a[2] for a in part]), device=device)
        targets = torch.full((len(part),), target, dtype=torch.int64)
        res = localized_bim(
            model,
            x,
            masks,
            targets,
            eps=cfg.eps,
            step_size=cfg.step_size,
            max_steps=cfg.max_steps,
            patience=cfg.patience,
            min_improvement=cfg.min_improvement,
            confidence=cfg.confidence,
        )
        sl = slice(s, s + len(part))
        adv[sl] = res.adversarial.cpu().numpy()
        outcome[sl], steps[sl] = res.outcome.numpy(), res.steps.numpy()
        prob[sl], adv_pred[sl] = res.target_prob.numpy(), res.pred.numpy()

    shape = x_all.shape[2:]
    result = LocalizedAttacks(
        target=target,
        source_rows=chosen,
        images=x_all,
        segments=np.stack(segments),
        source=np.array([a[0] for a in attempts], np.int64),
        rank=np.array([a[1] for a in attempts], np.int64),
        region=np.stack([a[2] for a in attempts]) if n else np.zeros((0, *shape), bool),
        adversarial=adv,
        outcome=outcome,
        steps=steps,
        target_prob=prob,
        pred=adv_pred,
    )
    m = result.metrics()
    log.info(
        "%d/%d attacks reached class %d (%d failed, %d stalled)",
        m["successes"],
        n,
        target,
        m["failed"],
        m["stalled"],
    )
    return result


def write_attacks(
    group: zarr.Group, attacks: LocalizedAttacks, labels: np.ndarray, chunk: int
) -> None:
    """The successful attacks into ``group``: images x', regions C, per-sample facts, and
    the attacked images' rows and segmentations (the ``localized_attack`` store).

    Shape:
        labels: (R,) int64 true class of every dataset row.
    """
    keep, src = attacks.kept, attacks.source
    write_array(
        group,
        "images",
        attacks.adversarial[keep],
        dims=("sample", "channel", "y", "x"),
        chunk_size=chunk,
        attrs={"range": [0.0, 1.0], "meaning": "localized adversarial examples x'"},
    )
    write_array(
        group,
        "region",
        attacks.region[keep].astype(np.uint8),
        dims=("sample", "y", "x"),
        chunk_size=chunk,
        attrs={"meaning": "attack region C: 1 where x' may differ from x"},
    )
    rows = attacks.source_rows[src[keep]]
    per_sample = {
        "rows": (rows, "dataset row of the attacked clean image"),
        "labels": (labels[rows], "true class"),
        "source": (src[keep], "index into source_rows / segments"),
        "region_rank": (attacks.rank[keep], "0 = largest region of its image"),
        "region_pixels": (attacks.region_pixels[keep], "|C|"),
        "steps": (attacks.steps[keep], "BIM steps to reach the target"),
        "target_prob": (attacks.target_prob[keep], "softmax probability of the target on x'"),
        "pred": (attacks.pred[keep], "prediction on x' (= target)"),
        "linf": (attacks.linf[keep].astype(np.float32), "|x' - x|_inf"),
    }
    for name, (values, meaning) in per_sample.items():
        write_array(
            group, name, values, dims=("sample",), chunk_size=chunk, attrs={"meaning": meaning}
        )
    write_array(
        group,
        "source_rows",
        attacks.source_rows,
        dims=("image",),
        chunk_size=chunk,
        attrs={"meaning": "dataset rows of the attacked images"},
    )
    write_array(
        group,
        "segments",
        attacks.segments.astype(np.int32),
        dims=("image", "y", "x"),
        chunk_size=chunk,
        attrs={"meaning": "Felzenszwalb segmentation of each image"},
    )
