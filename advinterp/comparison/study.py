"""Every method's map of the same adversarial examples, scored against three references
and against each other, each number beside a random map's exact expectation.

References (per example, (H, W) bool):

* ``perturbation``: where x̂ differs from x most, the top ``top_fraction`` of
  ``|x̂ - x|`` summed over channels, ties included (:func:`~.scores.top_share`);
* ``region``: the attacked region of a localized attack (the other groups have none);
* ``evidence``: where the changed evidence is: the ground-truth part boxes showing
  any of the attributes whose SJE prediction moved most between x and x̂ (the top
  ``distances.fraction``, Gulshad et al. Sec. 4.2);
* ``parts``: every part box of the image, the control for ``evidence``: a map that
  merely points at the object scores as well there as on ``evidence``.

A map's score against a reference is :func:`~.scores.overlap`; maps agree by
Spearman's rank correlation and the Jaccard index of their top-k pixel sets.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from advinterp.attacks.attack_to_explain import A2EParams
from advinterp.comparison.examples import GROUPS, SharedExamples
from advinterp.comparison.maps import (
    SjeReadout,
    a2e_class_maps,
    centre_map,
    explainer_maps,
    grounding_maps,
    interpretgan_maps,
    lan_maps,
    per_example,
    sje_attributes,
)
from advinterp.comparison.registry import DELTA, METHOD_NAMES, METHODS
from advinterp.comparison.scores import (
    box_mask,
    expected_overlap,
    overlap,
    spearman,
    tie_keys,
    top_count,
    top_jaccard,
    top_share,
)
from advinterp.data.dataset import PartBoxes
from advinterp.detection.attribute_rcnn import AttributeFasterRCNN
from advinterp.explainers.interpretgan import InterpretGAN
from advinterp.explainers.lime_image import LimeSettings
from advinterp.explainers.random_baseline import expected_jaccard
from advinterp.explainers.saliency import SaliencyForm
from advinterp.grounding.selection import Normalize, most_changed, scaled
from advinterp.models.classifier import ImageClassifier

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ComparisonModels:
    """Everything that explains: the attacked classifier and each method's own model."""

    classifier: ImageClassifier
    sje: SjeReadout
    detector: AttributeFasterRCNN
    lan: nn.Module
    igan_model: ImageClassifier
    igan_gan: InterpretGAN


@dataclass(frozen=True)
class ComparisonSettings:
    """How each method explains (from its own params section) and how maps are scored.

    Attributes:
        lime, saliency, batch_size: the ``explain`` stage's explainers.
        top_k, normalize, attribute_thresh, box_thresh: ``ground``'s Eq. 17 selection
            and box matching.
        evidence_fraction, evidence_normalize: ``distances``' most-changed attributes.
        a2e, a2e_samples: ``a2e_explain``'s Algorithm 1-2 settings (η at this size) and |D̄|.
        top_fraction: share of pixels in the top-k sets.
        seed: LIME's and the random map's seeds, a2e's draws and the tie-break keys.
    """

    lime: LimeSettings
    saliency: SaliencyForm
    batch_size: int
    top_k: int
    normalize: Normalize
    attribute_thresh: float
    box_thresh: float
    evidence_fraction: float
    evidence_normalize: Normalize
    a2e: A2EParams
    a2e_samples: int
    top_fraction: float
    seed: int


@dataclass
class Comparison:
    """The maps, the references and every score.

    Attributes:
        examples: the shared examples.
        maps: method name -> (N, H, W) float64 >= 0, in :data:`METHODS` order.
        references: :data:`REFERENCES` key -> (N, H, W) bool.
        delta: (N, H, W) float64 ``|x̂ - x|`` summed over channels.
        scores: one row per (example, method, reference): ``score``, ``random`` (the
            exact expectation for that example), ``group``.
        summary: one row per (reference, group incl. ``all``, method): n, mean, sd, se,
            random, lift = mean - random, above_random (lift > 2 se), prior_lift and
            above_prior (paired against the centre prior, :func:`summarise`).
        agreement: one row per ordered pair of maps (``delta`` first): Spearman and top-k
            Jaccard mean and sd over examples, and the random pair's expectations.
        info: the settings worth reporting (k, the InterpretGAN layer, a2e's classes).
    """

    examples: SharedExamples
    maps: dict[str, np.ndarray]
    references: dict[str, np.ndarray]
    delta: np.ndarray
    scores: pd.DataFrame
    summary: pd.DataFrame
    agreement: pd.DataFrame
    info: dict[str, Any] = field(default_factory=dict)


def perturbation_l1(examples: SharedExamples) -> np.ndarray:
    """``|x̂ - x|`` summed over channels. Shape: (N, H, W) float64 >= 0."""
    return np.abs(examples.adversarial.astype(np.float64) - examples.clean).sum(1)


def part_regions(
    boxes: PartBoxes | None,
    rows: np.ndarray,
    size: tuple[int, int],
    showing: np.ndarray | None = None,
) -> np.ndarray:
    """Each example's ground-truth part boxes: all of them, or those showing any of the
    attributes marked in its row of ``showing``.

    Shape:
        rows: (N,) dataset rows; showing: (N, A) bool or None. returns (N, H, W) bool
        (all False where the dataset has no part boxes).
    """
    out = np.zeros((len(rows), *size), bool)
    if boxes is None:
        return out
    for i, row in enumerate(rows):
        sl = boxes.of(int(row))
        keep = (
            slice(None)
            if showing is None
            else (boxes.attributes[sl].astype(bool) & showing[i]).any(1)
        )
        out[i] = box_mask(boxes.xyxy[sl][keep], size)
    return out


def method_maps(
    examples: SharedExamples,
    models: ComparisonModels,
    settings: ComparisonSettings,
    dataset: tuple[Any, np.ndarray, np.ndarray],
    device: torch.device,
) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
    """Every method's map of each adversarial example (:mod:`~.maps`).

    Args:
        dataset: (images, labels, split) of the whole dataset: a2e draws D̄ from it.

    Returns:
        maps by :data:`METHOD_NAMES`, then the SJE attributes of the clean and of the
        adversarial images ((N, A) each).
    """
    s, x_adv = settings, examples.adversarial
    maps = explainer_maps(
        models.classifier,
        x_adv,
        lime=s.lime,
        saliency=s.saliency,
        batch_size=s.batch_size,
        device=device,
        seed=s.seed,
    )
    maps["lan_mask"] = lan_maps(models.lan, x_adv, s.batch_size, device)
    attrs_clean = sje_attributes(
        models.classifier, models.sje, examples.clean, s.batch_size, device
    )
    attrs_adv = sje_attributes(models.classifier, models.sje, x_adv, s.batch_size, device)
    maps["grounding"] = grounding_maps(
        models.detector,
        x_adv,
        attrs_adv,
        models.sje.phi,
        examples.label,
        top_k=s.top_k,
        normalize=s.normalize,
        attribute_thresh=s.attribute_thresh,
        box_thresh=s.box_thresh,
        batch_size=s.batch_size,
        device=device,
    )
    maps["interpretgan"] = interpretgan_maps(
        models.igan_model, models.igan_gan, examples.clean, x_adv, device
    )
    images, labels, split = dataset
    class_maps = a2e_class_maps(
        models.classifier,
        images,
        labels,
        split,
        examples.adv_class,
        params=s.a2e,
        num_samples=s.a2e_samples,
        seed=s.seed,
        device=device,
    )
    maps["a2e_class"] = per_example(class_maps, examples.adv_class)
    maps["centre"] = np.broadcast_to(centre_map(examples.size), x_adv[:, 0].shape)
    return (
        {name: np.asarray(maps[name], np.float64) for name in METHOD_NAMES},
        attrs_clean,
        attrs_adv,
    )


def score_maps(
    maps: dict[str, np.ndarray],
    references: dict[str, np.ndarray],
    groups: np.ndarray,
    keys: np.ndarray,
) -> pd.DataFrame:
    """:func:`~.scores.overlap` of every map with every non-empty reference set.

    Shape: maps (N, H, W) each; references (N, H, W) bool each; groups (N,) str;
    keys (N, H, W) tie-break keys.
    """
    records = []
    for ref, sets in references.items():
        for i in range(len(groups)):
            if not sets[i].any():
                continue
            random = expected_overlap(sets[i])
            for name, m in maps.items():
                records.append(
                    {
                        "example": i,
                        "group": str(groups[i]),
                        "reference": ref,
                        "method": name,
                        "score": overlap(m[i], sets[i], keys[i]),
                        "random": random,
                    }
                )
    return pd.DataFrame.from_records(
        records, columns=["example", "group", "reference", "method", "score", "random"]
    )


def summarise(scores: pd.DataFrame, prior: str = "centre") -> pd.DataFrame:
    """Mean ± sd over examples per (reference, group, method), and over all groups.

    ``random`` is the mean of the examples' exact expectations; ``above_random``: the
    mean exceeds it by more than two standard errors. Where the scores hold the
    ``prior`` map (the centre prior), ``prior_lift`` is the mean of each example's score
    minus the prior's on that example, and ``above_prior`` says it exceeds two standard
    errors of those paired differences: the map finds more than "the object is in the
    middle".
    """
    if (scores["method"] == prior).any():
        base = scores[scores["method"] == prior].set_index(["reference", "example"])["score"]
        keys = pd.MultiIndex.from_frame(scores[["reference", "example"]])
        scores = scores.assign(
            over_prior=scores["score"].to_numpy() - base.reindex(keys).to_numpy()
        )
    else:
        scores = scores.assign(over_prior=np.nan)
    parts = [scores, scores.assign(group="all")]
    stats = (
        pd.concat(parts)
        .groupby(["reference", "group", "method"], sort=False)
        .agg(
            n=("score", "size"),
            mean=("score", "mean"),
            sd=("score", "std"),
            random=("random", "mean"),
            prior_lift=("over_prior", "mean"),
            prior_sd=("over_prior", "std"),
        )
        .reset_index()
    )
    stats["sd"] = stats["sd"].fillna(0.0)
    stats["se"] = stats["sd"] / np.sqrt(stats["n"])
    stats["lift"] = stats["mean"] - stats["random"]
    stats["above_random"] = stats["lift"] > 2 * stats["se"]
    prior_se = stats.pop("prior_sd").fillna(0.0) / np.sqrt(stats["n"])
    stats["above_prior"] = (stats["prior_lift"] > 2 * prior_se) & (stats["method"] != prior)
    return stats


def agreement(
    maps: dict[str, np.ndarray], delta: np.ndarray, k: int, keys: np.ndarray
) -> pd.DataFrame:
    """Spearman and top-k Jaccard of every pair of maps (``delta`` = |x̂ - x| included).

    Shape: maps (N, H, W) each; delta (N, H, W); keys (N, H, W).
    """
    every = {DELTA: delta, **maps}
    names = list(every)
    n_pixels = int(delta[0].size) if len(delta) else 0
    records = []
    for a in names:
        for b in names:
            rho = [spearman(every[a][i], every[b][i]) for i in range(len(delta))]
            jac = [top_jaccard(every[a][i], every[b][i], k, keys[i]) for i in range(len(delta))]
            records.append(
                {
                    "a": a,
                    "b": b,
                    "spearman": float(np.nanmean(rho)) if np.isfinite(rho).any() else np.nan,
                    "spearman_sd": float(np.nanstd(rho, ddof=1))
                    if np.isfinite(rho).sum() > 1
                    else 0.0,
                    "jaccard": float(np.mean(jac)),
                    "jaccard_sd": float(np.std(jac, ddof=1)) if len(jac) > 1 else 0.0,
                    "spearman_random": 0.0,
                    "jaccard_random": expected_jaccard(k, k, n_pixels),
                }
            )
    return pd.DataFrame.from_records(records)


def compare_explanations(
    examples: SharedExamples,
    models: ComparisonModels,
    settings: ComparisonSettings,
    *,
    dataset: tuple[Any, np.ndarray, np.ndarray],
    boxes: PartBoxes | None,
    device: torch.device,
    info: dict[str, Any] | None = None,
) -> Comparison:
    """Map, score and compare (the ``compare`` stage's one call).

    Args:
        dataset: (images, labels, split) of the whole dataset (a2e's D̄ comes from it).
        boxes: the dataset's ground-truth part boxes (None: no ``evidence`` reference).
        info: settings to carry into the result (e.g. the InterpretGAN layer chosen).
    """
    s = settings
    size = examples.size
    maps, attrs_clean, attrs_adv = method_maps(examples, models, s, dataset, device)
    changed = most_changed(
        scaled(attrs_clean, s.evidence_normalize),
        scaled(attrs_adv, s.evidence_normalize),
        s.evidence_fraction,
    )
    delta = perturbation_l1(examples)
    references = {
        "perturbation": np.stack([top_share(d, s.top_fraction) for d in delta]),
        "region": examples.region & examples.localized[:, None, None],
        "evidence": part_regions(boxes, examples.rows, size, changed),
        "parts": part_regions(boxes, examples.rows, size),
    }
    keys = np.stack([tie_keys(size, [s.seed, 7919, i]) for i in range(len(examples))])
    scores = score_maps(maps, references, examples.group, keys)
    k = top_count(s.top_fraction, size[0] * size[1])
    return Comparison(
        examples=examples,
        maps=maps,
        references=references,
        delta=delta,
        scores=scores,
        summary=summarise(scores),
        agreement=agreement(maps, delta, k, keys),
        info={
            **(info or {}),
            "k": k,
            "pixels": size[0] * size[1],
            "examples": {g: int((examples.group == g).sum()) for g in GROUPS},
            "a2e_classes": sorted({int(c) for c in examples.adv_class}),
            "changed_attributes": int(changed[0].sum()) if len(changed) else 0,
            "methods": [
                {"name": m.name, "method": m.method, "level": m.level, "model": m.model}
                for m in METHODS
            ],
        },
    )
