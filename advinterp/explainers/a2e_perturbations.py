"""Attack to explain as an explanation of classifiers (Jalwana et al. Sec. 5.1, Figs. 3-5).

For every target class and several seeds, Algorithms 1-2
(:func:`~advinterp.attacks.attack_to_explain.attack_to_explain`) on each model with the
target class left out of the distribution samples D̄, so that the perturbation shows
what the model, not the data, takes the class to be. Also the region-specific variant
of Fig. 4 (the same uniform mean-colour patch in the seed and every sample) and the
cross-model check: each model's target probability on the other models' perturbations,
added to held-out non-target images and shown alone as an image.

The budget η is stated at the paper's image size (``reference_size``, 224 px) and scaled
to ours at equal rms per pixel value (:func:`~advinterp.attacks.attack_to_explain.eta_at_size`).
The headline numbers (``metrics["headline"]``) are :func:`~advinterp.analysis.spread.spread`
dicts over the seed index: for each seed, the mean over the targets of that seed's run.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch
import zarr

from advinterp.analysis.spread import spread
from advinterp.attacks.attack_to_explain import (
    A2EParams,
    A2EResult,
    at_image_size,
    attack_to_explain,
    energy_near,
    mean_colour,
    patch_box,
    visualise_perturbation,
    with_patch,
)
from advinterp.config.a2e_explain import A2EExplainConfig
from advinterp.config.classes import resolve_class, resolve_classes
from advinterp.data.batches import SplitBatches
from advinterp.data.dataset import TEST, TRAIN, AttributeIndex
from advinterp.data.rows import read_rows
from advinterp.errors import ParamError
from advinterp.models.classifier import ImageClassifier
from advinterp.models.training import accuracy
from advinterp.progress import track
from advinterp.store import sample_chunk_size

log = logging.getLogger(__name__)

MODEL_KEYS = ("standard", "second")
"""The explained models: the standard classifier and the second architecture."""

RUN_ARRAYS = {
    "target": np.int64,
    "seed_row": np.int64,
    "region": np.int64,
    "iterations": np.int64,
    "first_stop": np.int64,
    "target_probability": np.float32,
}
"""Per-run columns stored beside the perturbations, with their stored dtype."""
P_MEANING = "p of Algorithms 1-2, ||p||_2 <= eta"


@dataclass(frozen=True)
class ClassPerturbations:
    """Every run of :func:`explain_classes` and what is measured on them.

    Attributes:
        runs: one record per run, in run order: ``run`` (its name), ``model``,
            ``target``, ``seed`` (index among the target's seeds), ``seed_row``,
            ``region`` (-1 = no patch), iterations, ℘, held-out and as-image
            probabilities per model, and ``energy_near_region`` for patched runs.
        results: the attack's result of each run.
        seed_images: (R, 3, H, W) float32 in [0, 1], the seed of each run (patched).
        boxes: the Fig. 4 patches, (top, left, height, width) in pixels.
        examples: target -> a test image of the class, (3, H, W) float32 in [0, 1] (None
            when it has none), in the order of ``targets``.
        reference: the run whose perturbation Fig. 4's patched runs are compared with
            (standard model, region target, first seed, no patch).
        region_target: the class of the Fig. 4 runs.
        metrics: the models' table, the cross-model table and the region summary.
        curves: ℘ per iteration: the mean over each model's runs, then every run.
    """

    runs: list[dict[str, Any]]
    results: list[A2EResult]
    seed_images: torch.Tensor
    boxes: list[tuple[int, int, int, int]]
    examples: dict[int, torch.Tensor | None]
    reference: int
    region_target: int
    metrics: dict[str, Any]
    curves: pd.DataFrame

    def arrays(self) -> dict[str, tuple[np.ndarray, dict[str, Any]]]:
        """What is stored per run: name -> (array, attrs).

        Shape:
            perturbation: (R, 3, H, W) float32, ``||p||_2 <= η``; seed_image: (R, 3, H, W)
            float32 in [0, 1]; the columns of :data:`RUN_ARRAYS` and ``model`` (its index
            in :data:`MODEL_KEYS`): (R,).
        """
        eta = self.metrics["params"]["eta"]
        perturbations = torch.stack([r.perturbation.cpu() for r in self.results]).numpy()
        out = {
            "perturbation": (perturbations, {"meaning": P_MEANING, "eta": eta}),
            "seed_image": (self.seed_images.numpy(), {"range": [0.0, 1.0]}),
        }
        table = pd.DataFrame(self.runs)
        for name, dtype in RUN_ARRAYS.items():
            out[name] = (table[name].to_numpy(dtype), {})
        codes = np.array([MODEL_KEYS.index(m) for m in table.model])
        out["model"] = (codes, {"codes": list(MODEL_KEYS)})
        return out


def _pad(h: np.ndarray, n: int) -> np.ndarray:
    out = np.full(n, np.nan)
    out[: len(h)] = h
    return out


def _nanmean_ragged(hs: list[np.ndarray], n: int) -> np.ndarray:
    if not hs:
        return np.full(n, np.nan)
    stack = np.stack([_pad(h, n) for h in hs])
    with np.errstate(all="ignore"):
        return np.nanmean(stack, axis=0)


def _plan(
    labels: np.ndarray,
    split: np.ndarray,
    classes: Sequence[int],
    cfg: A2EExplainConfig,
    rng: np.random.Generator,
) -> dict[int, dict[str, np.ndarray]]:
    """Rows of each target: D̄ (non-target train images), seeds and held-out images (both
    non-target test images, disjoint) and a test image of the class, for the figure."""
    plan: dict[int, dict[str, np.ndarray]] = {}
    for t in classes:
        train_rows = np.flatnonzero((labels != t) & (split == TRAIN))
        test_rows = np.flatnonzero((labels != t) & (split == TEST))
        n_seeds = cfg.seeds_per_target
        if len(train_rows) < 1 or len(test_rows) < n_seeds + 1:
            raise ParamError(f"a2e_explain: too few non-target images for class {t}")
        seeds = rng.choice(test_rows, n_seeds, replace=False)
        rest = np.setdiff1d(test_rows, seeds)
        plan[t] = {
            "samples": rng.choice(train_rows, min(cfg.num_samples, len(train_rows)), replace=False),
            "seeds": seeds,
            "heldout": np.sort(rng.choice(rest, min(cfg.eval_images, len(rest)), replace=False)),
            "example": np.flatnonzero((labels == t) & (split == TEST))[:1],
        }
    return plan


def explain_classes(
    models: Mapping[str, ImageClassifier],
    images: zarr.Array,
    index: AttributeIndex,
    cfg: A2EExplainConfig,
    *,
    seed: int,
    device: torch.device,
    accuracy_batch_size: int,
) -> ClassPerturbations:
    """Sec. 5.1: class perturbations of every model, Fig. 4's patches, the cross-model table.

    Run ``n`` (models x targets x seeds, then the patched runs) draws its mini-batches
    from ``torch.Generator().manual_seed(seed * 100003 + n)``; the rows are drawn from
    ``numpy.random.default_rng(seed)``.

    Args:
        models: :data:`MODEL_KEYS` -> classifier in eval mode on ``device``.
        accuracy_batch_size: batch size of the test-accuracy pass in the models' table.

    Shape:
        images: (N, 3, S, S) zarr array in [0, 1], the rows of ``index``.
    """
    labels, split, class_names = index.labels, index.split, index.class_names
    C, S = len(class_names), int(images.shape[-1])
    targets = resolve_classes(cfg.targets, class_names, seed, "a2e_explain.targets")
    region_target = (
        targets[0]
        if cfg.region.target is None
        else resolve_class(cfg.region.target, class_names, "a2e_explain.region.target")
    )
    # η is stated at the paper's image size: the same rms per pixel value at ours
    params = at_image_size(
        A2EParams(**cfg.attack.model_dump()),
        (int(images.shape[-2]), int(images.shape[-1])),
        cfg.reference_size,
    )
    log.info(
        "eta %.3g at %d px (%.3g at %s px, rms %.3g per value)",
        params.eta,
        S,
        cfg.attack.eta,
        cfg.reference_size,
        params.eta / np.sqrt(np.prod(images.shape[-3:])),
    )
    rng = np.random.default_rng(seed)
    plan = _plan(labels, split, list(dict.fromkeys([*targets, region_target])), cfg, rng)

    runs: list[dict[str, Any]] = []
    results: list[A2EResult] = []
    seed_images: list[torch.Tensor] = []
    jobs = [
        (key, t, k, -1) for key in MODEL_KEYS for t in targets for k in range(cfg.seeds_per_target)
    ]
    jobs += [("standard", region_target, 0, r) for r in range(len(cfg.region.positions))]
    if region_target not in targets:
        jobs.append(("standard", region_target, 0, -1))
    boxes = [patch_box(S, cfg.region.size, pos) for pos in cfg.region.positions]
    cache: dict[int, dict[str, torch.Tensor]] = {}
    for n, (key, t, k, r) in enumerate(track(jobs, total=len(jobs), desc="a2e", unit="run")):
        if t not in cache:
            cache[t] = {
                "samples": read_rows(images, plan[t]["samples"]).to(device),
                "seeds": read_rows(images, plan[t]["seeds"]).to(device),
            }
        samples, seed_image = cache[t]["samples"], cache[t]["seeds"][k]
        if r >= 0:  # Fig. 4: the same uniform patch in the seed and every sample
            colour = mean_colour(samples)
            samples = with_patch(samples, boxes[r], colour)
            seed_image = with_patch(seed_image, boxes[r], colour)
        gen = torch.Generator().manual_seed(seed * 100003 + n)
        res = attack_to_explain(models[key], seed_image, samples, t, params, gen)
        results.append(res)
        seed_images.append(seed_image.cpu())
        runs.append(
            {
                "run": f"{key}/{class_names[t]}/seed{k}" + (f"/region{r}" if r >= 0 else ""),
                "model": key,
                "target": t,
                "seed": k,
                "seed_row": int(plan[t]["seeds"][k]),
                "region": r,
                "iterations": res.iterations,
                "first_stop": res.first_stop,
                "reached_gamma": bool(res.history[: res.first_stop].max(initial=0) >= params.gamma),
                "refinements": res.refinements,
                "target_probability": res.target_probability,
                "norm": float(res.perturbation.norm()),
            }
        )
        log.info(
            "%s: ℘ %.3f after %d iterations (first stop %d)",
            runs[-1]["run"],
            res.target_probability,
            res.iterations,
            res.first_stop,
        )

    cross = _cross_model(models, images, plan, targets, runs, results, device)
    table = pd.DataFrame(runs)  # before the region loop adds energy_near_region
    explain_rows = table[table.region < 0]
    tests = SplitBatches(images, labels, split, accuracy_batch_size, sample_chunk_size(images))
    per_model = {}
    for key in MODEL_KEYS:
        sel = explain_rows[explain_rows.model == key]
        per_model[key] = {
            "arch": models[key].arch,
            "runs": len(sel),
            "mean_iterations": float(sel.iterations.mean()),
            "mean_iterations_to_stop": float(sel.first_stop.mean()),
            "reached_gamma_fraction": float(sel.reached_gamma.mean()),
            "mean_target_probability": float(sel.target_probability.mean()),
            "mean_heldout_target_probability": float(sel[f"heldout_probability_{key}"].mean()),
            "test_accuracy": accuracy(models[key], tests.ordered(TEST), device),
        }

    reference = next(
        i
        for i, r in enumerate(runs)
        if r["model"] == "standard"
        and r["target"] == region_target
        and r["seed"] == 0
        and r["region"] < 0
    )
    region_metrics = _region_metrics(runs, results, boxes, results[reference])

    metrics = {
        "params": {
            "eta": params.eta,
            "eta_at_reference_size": cfg.attack.eta,
            "reference_size": cfg.reference_size,
            "rms_per_value": params.eta / float(np.sqrt(np.prod(images.shape[-3:]))),
            "gamma": params.gamma,
            "b": params.batch_size,
            "num_samples": cfg.num_samples,
        },
        "chance": 1.0 / C,
        "headline": _headline(runs, targets, cross["clean_heldout_target_rate"]),
        "models": per_model,
        "cross_model": cross,
        "region": {
            "target": region_target,
            "mean_energy_near_region": float(
                np.mean([m["energy_near_region"] for m in region_metrics])
            ),
            "mean_unpatched_energy_near_region": float(
                np.mean([m["unpatched_energy_near_region"] for m in region_metrics])
            ),
            "mean_area_fraction": float(np.mean([m["area_fraction"] for m in region_metrics])),
            "patches": region_metrics,
        },
    }

    return ClassPerturbations(
        runs=runs,
        results=results,
        seed_images=torch.stack(seed_images),
        boxes=boxes,
        examples={
            t: read_rows(images, plan[t]["example"])[0] if len(plan[t]["example"]) else None
            for t in targets
        },
        reference=reference,
        region_target=region_target,
        metrics=metrics,
        curves=_curves(runs, results),
    )


def _cross_model(
    models: Mapping[str, ImageClassifier],
    images: zarr.Array,
    plan: dict[int, dict[str, np.ndarray]],
    targets: Sequence[int],
    runs: list[dict[str, Any]],
    results: list[A2EResult],
    device: torch.device,
) -> dict[str, Any]:
    """Sec. 5.1's cross-model check: every model's mean target probability on every
    model's (unpatched) perturbations, added to held-out non-target test images and
    alone as an image; also on the clean held-out images. Adds each run's values to
    its record: ``heldout_probability_<model>`` (mean p(target) of held-out + p),
    ``heldout_fooling_rate_<model>`` (share of them whose top class is the target),
    ``image_probability_<model>`` and ``image_top1_<model>`` (p alone, as an image)."""
    heldout = {t: read_rows(images, plan[t]["heldout"]).to(device) for t in targets}
    cross_added: dict[str, dict[str, list[float]]] = {
        s: {e: [] for e in MODEL_KEYS} for s in MODEL_KEYS
    }
    cross_image: dict[str, dict[str, list[float]]] = {
        s: {e: [] for e in MODEL_KEYS} for s in MODEL_KEYS
    }
    clean: dict[str, list[float]] = {e: [] for e in MODEL_KEYS}
    clean_rate: dict[str, list[float]] = {e: [] for e in MODEL_KEYS}
    for run_info, res in zip(runs, results, strict=True):
        if run_info["region"] >= 0 or run_info["target"] not in heldout:
            continue
        t, p = run_info["target"], res.perturbation.to(device)
        for e, model in models.items():
            added, added_top1 = target_scores(model, (heldout[t] + p).clamp(0, 1), t)
            as_image, as_image_top1 = target_scores(model, visualise_perturbation(p)[None], t)
            cross_added[run_info["model"]][e].append(float(added.mean()))
            cross_image[run_info["model"]][e].append(float(as_image[0]))
            run_info[f"heldout_probability_{e}"] = float(added.mean())
            run_info[f"heldout_fooling_rate_{e}"] = float(added_top1.float().mean())
            run_info[f"image_probability_{e}"] = float(as_image[0])
            run_info[f"image_top1_{e}"] = float(as_image_top1[0])
    for t in targets:
        for e, model in models.items():
            prob, top1 = target_scores(model, heldout[t], t)
            clean[e].append(float(prob.mean()))
            clean_rate[e].append(float(top1.float().mean()))
    return {
        "added_to_heldout_images": {
            s: {e: float(np.mean(v)) for e, v in d.items()} for s, d in cross_added.items()
        },
        "perturbation_as_image": {
            s: {e: float(np.mean(v)) for e, v in d.items()} for s, d in cross_image.items()
        },
        "clean_heldout_images": {e: float(np.mean(v)) for e, v in clean.items()},
        "clean_heldout_target_rate": {e: float(np.mean(v)) for e, v in clean_rate.items()},
    }


@torch.no_grad()
def target_scores(
    model: ImageClassifier, images: torch.Tensor, target: int, batch_size: int = 256
) -> tuple[torch.Tensor, torch.Tensor]:
    """``P(K(I) -> target)`` and whether the target is the top class, per image (one
    forward pass; the model must already be in eval mode).

    Shape:
        images: (N, 3, H, W) float32 in [0, 1]; returns (N,) float32 and (N,) bool.
    """
    probs, top1 = [], []
    for s in range(0, len(images), batch_size):
        logits = model(images[s : s + batch_size])
        probs.append(torch.softmax(logits, dim=1)[:, target])
        top1.append(logits.argmax(dim=1) == target)
    if not probs:
        return images.new_zeros(0), torch.zeros(0, dtype=torch.bool, device=images.device)
    return torch.cat(probs), torch.cat(top1)


HEADLINE = {
    "heldout_fooling_rate": "heldout_fooling_rate",
    "perturbation_classified_as_target": "image_top1",
    "heldout_target_probability": "heldout_probability",
}
"""Headline numbers (metrics key -> per-run column prefix): the share of held-out
non-target test images that ``p`` turns into the target (Eq. 2's fooling, on images D̄
never saw), the class-revealing measure (``p`` alone, shown as an image, is classified
as the target) and the mean target probability of held-out images + ``p``."""


def _headline(
    runs: list[dict[str, Any]], targets: Sequence[int], clean_rate: Mapping[str, float]
) -> dict[str, Any]:
    """The headline numbers as spreads over the seed index: for seed k, the mean over the
    targets of the run with seed k, per perturbation source and judging model (own model
    on the diagonal, cross-model off it). ``clean_heldout_target_rate``: the same held-out
    images without ``p`` (equal for every seed: they do not depend on it)."""
    table = pd.DataFrame(runs)
    table = table[(table.region < 0) & table.target.isin(list(targets))]

    def by_seed(source: str, column: str) -> dict[str, Any]:
        per_seed = table[table.model == source].groupby("seed")[column].mean().sort_index()
        return spread(per_seed.to_numpy())

    out: dict[str, Any] = {
        key: {
            source: {judge: by_seed(source, f"{prefix}_{judge}") for judge in MODEL_KEYS}
            for source in MODEL_KEYS
        }
        for key, prefix in HEADLINE.items()
    }
    out["clean_heldout_target_rate"] = dict(clean_rate)
    out["over"] = "seed index; each value the mean over the targets; [perturbation of][judged by]"
    return out


def _region_metrics(
    runs: list[dict[str, Any]],
    results: list[A2EResult],
    boxes: list[tuple[int, int, int, int]],
    ref: A2EResult,
) -> list[dict[str, Any]]:
    """Fig. 4: the energy share of each patched run's perturbation near its patch, beside
    the unpatched reference's share there and the area share. Adds
    ``energy_near_region`` to the patched runs' records."""
    out = []
    for i, info in enumerate(runs):
        if info["region"] < 0:
            continue
        box = boxes[info["region"]]
        share, area = energy_near(results[i].perturbation, box)
        ref_share, _ = energy_near(ref.perturbation, box)
        info["energy_near_region"] = share
        out.append(
            {
                "box": list(box),
                "energy_near_region": share,
                "unpatched_energy_near_region": ref_share,
                "area_fraction": area,
                "target_probability": results[i].target_probability,
            }
        )
    return out


def _curves(runs: list[dict[str, Any]], results: list[A2EResult]) -> pd.DataFrame:
    """℘ per iteration (Algorithm 1 line 22): each model's mean over its unpatched runs,
    then one column per run (NaN after a run stopped)."""
    curves = {"iteration": np.arange(1, max(len(r.history) for r in results) + 1)}
    for key in MODEL_KEYS:
        hs = [
            results[i].history
            for i, info in enumerate(runs)
            if info["model"] == key and info["region"] < 0
        ]
        curves[key] = _nanmean_ragged(hs, len(curves["iteration"]))
    for info, res in zip(runs, results, strict=True):
        curves[info["run"]] = _pad(res.history, len(curves["iteration"]))
    return pd.DataFrame(curves)
