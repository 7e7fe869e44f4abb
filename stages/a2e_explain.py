"""Stage ``a2e_explain``: attack-to-explain perturbations (Jalwana et al. Sec. 5.1, Figs. 2-5).

For every target class and several seeds, Algorithms 1-2 alternated on the standard
classifier and on a second architecture trained here, with the target class left out
of the distribution samples D̄. Also the region-specific variant of Fig. 4 (a uniform
mean-colour patch in every sample) and the cross-model check: each model's target
probability on the other models' perturbations.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from advinterp.attacks.attack_to_explain import (
    A2EParams,
    A2EResult,
    attack_to_explain,
    mean_colour,
    target_probability,
    visualise_perturbation,
    with_patch,
)
from advinterp.config.a2e import A2EExplainConfig, A2ESecondModelConfig
from advinterp.config.core import load
from advinterp.data.artifact import open_dataset, read_index
from advinterp.data.batches import SplitBatches
from advinterp.data.dataset import TEST, TRAIN
from advinterp.errors import ParamError
from advinterp.explainers.a2e_figures import image_grid
from advinterp.models.checkpoint import load_classifier, save_classifier
from advinterp.models.classifier import ImageClassifier, build_classifier
from advinterp.models.training import accuracy, fit, make_optimizer
from advinterp.progress import track
from advinterp.runtime import resolve_device
from advinterp.store import atomic_output, create_group, sample_chunk_size, write_array, write_json
from stages.cli import parser, run, setup_base

log = logging.getLogger("advinterp.stages.a2e_explain")
SHUFFLE_BUFFER = 8192
MODEL_KEYS = ("standard", "second")


def build() -> argparse.ArgumentParser:
    p = parser(__doc__)
    p.add_argument("--dataset", type=Path, required=True)
    p.add_argument("--model", type=Path, required=True, help="the standard classifier")
    p.add_argument("--second-model", type=Path, required=True, help="checkpoint to write")
    p.add_argument("--out", type=Path, required=True, help="perturbations zarr store")
    p.add_argument("--metrics", type=Path, required=True)
    p.add_argument("--curves", type=Path, required=True, help="℘ per iteration (CSV)")
    p.add_argument("--figure", type=Path, required=True, help="perturbation grid (PNG)")
    p.add_argument("--figure-regions", type=Path, required=True, help="Fig. 4 analogue (PNG)")
    return p


def read_rows(images, rows: np.ndarray) -> torch.Tensor:
    """Images of dataset ``rows`` (any order), read with one orthogonal selection."""
    rows = np.asarray(rows, dtype=np.int64)
    order = np.argsort(rows)
    data = np.asarray(images.get_orthogonal_selection((rows[order],)), dtype=np.float32)
    out = np.empty_like(data)
    out[order] = data
    return torch.as_tensor(out)


def train_second(
    cfg: A2ESecondModelConfig,
    images,
    index,
    mean: list[float],
    std: list[float],
    device: torch.device,
    seed: int,
) -> tuple[ImageClassifier, float]:
    """Train the second architecture on the train split; return it and its test accuracy."""
    model = build_classifier(cfg.arch, len(index.class_names), mean, std)
    model.to(device)
    data = SplitBatches(
        images, index.labels, index.split, cfg.batch_size, sample_chunk_size(images)
    )
    rng = np.random.default_rng(seed)
    history = fit(
        model,
        lambda epoch: data.shuffled(rng, SHUFFLE_BUFFER),
        lambda: data.ordered(data.monitor),
        epochs=cfg.epochs,
        steps_per_epoch=data.steps_per_epoch,
        optimizer=make_optimizer(model, **cfg.optimizer.model_dump()),
        device=device,
        generator=torch.Generator().manual_seed(seed),
        augment=cfg.augment,
    )
    log.info("%s trained: val accuracy %.3f", cfg.arch, history[-1]["val_accuracy"])
    return model.eval(), accuracy(model, data.ordered(TEST), device)


def test_accuracy(model: ImageClassifier, images, index, batch_size: int, device) -> float:
    """Top-1 accuracy on the test split, streamed."""
    data = SplitBatches(images, index.labels, index.split, batch_size, sample_chunk_size(images))
    return accuracy(model, data.ordered(TEST), device)


def _box(size: int, frac: float, pos: tuple[float, float]) -> tuple[int, int, int, int]:
    side = max(1, round(frac * size))
    top = min(round(pos[0] * size), size - side)
    left = min(round(pos[1] * size), size - side)
    return top, left, side, side


def energy_near(p: torch.Tensor, box: tuple[int, int, int, int]) -> tuple[float, float]:
    """Share of ``||p||²`` inside ``box`` grown by half its side, and that area's share."""
    top, left, h, w = box
    H, W = p.shape[-2:]
    y0, y1 = max(0, top - h // 2), min(H, top + h + h // 2)
    x0, x1 = max(0, left - w // 2), min(W, left + w + w // 2)
    e = p.pow(2).sum(0)
    return float(e[y0:y1, x0:x1].sum() / e.sum().clamp_min(1e-30)), (y1 - y0) * (x1 - x0) / (H * W)


def save_figure(fig, path: Path) -> None:
    import matplotlib.pyplot as plt

    with atomic_output(path) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)


def main(args: argparse.Namespace) -> None:
    base = setup_base(args.params)
    cfg = load(A2EExplainConfig, args.params)
    device = resolve_device(base.device)
    group = open_dataset(args.dataset)
    index = read_index(group)
    images = group["images"]
    C, S = len(index.class_names), int(images.shape[-1])
    bad = [t for t in cfg.targets if t >= C]
    if bad:
        raise ParamError(f"a2e_explain.targets: classes {bad} do not exist ({C} classes)")
    region_target = cfg.targets[0] if cfg.region.target is None else cfg.region.target
    if region_target >= C:
        raise ParamError(f"a2e_explain.region.target: class {region_target} does not exist")
    params = A2EParams(**cfg.attack.model_dump())

    standard = load_classifier(args.model, device, num_classes=C)
    mean, std = standard.mean.flatten().tolist(), standard.std.flatten().tolist()
    log.info("training the second architecture %s", cfg.second.arch)
    second, second_acc = train_second(cfg.second, images, index, mean, std, device, base.seed)
    log.info("%s test accuracy %.3f", cfg.second.arch, second_acc)
    models = {"standard": standard, "second": second}

    rng = np.random.default_rng(base.seed)
    labels, split = index.labels, index.split
    plan: dict[int, dict[str, np.ndarray]] = {}
    for t in dict.fromkeys([*cfg.targets, region_target]):
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

    runs: list[dict] = []
    results: list[A2EResult] = []
    seed_images: list[torch.Tensor] = []
    jobs = [
        (key, t, k, -1)
        for key in MODEL_KEYS
        for t in cfg.targets
        for k in range(cfg.seeds_per_target)
    ]
    jobs += [("standard", region_target, 0, r) for r in range(len(cfg.region.positions))]
    if region_target not in cfg.targets:
        jobs.append(("standard", region_target, 0, -1))
    boxes = [_box(S, cfg.region.size, pos) for pos in cfg.region.positions]
    cache: dict[int, dict[str, torch.Tensor]] = {}
    for n, (key, t, k, r) in enumerate(track(jobs, total=len(jobs), desc="a2e", unit="run")):
        if t not in cache:
            cache[t] = {
                "samples": read_rows(images, plan[t]["samples"]).to(device),
                "seeds": read_rows(images, plan[t]["seeds"]).to(device),
            }
        samples, seed = cache[t]["samples"], cache[t]["seeds"][k]
        if r >= 0:  # Fig. 4: the same uniform patch in the seed and every sample
            colour = mean_colour(samples)
            samples = with_patch(samples, boxes[r], colour)
            seed = with_patch(seed, boxes[r], colour)
        gen = torch.Generator().manual_seed(base.seed * 100003 + n)
        res = attack_to_explain(models[key], seed, samples, t, params, gen)
        results.append(res)
        seed_images.append(seed.cpu())
        runs.append(
            {
                "run": f"{key}/{index.class_names[t]}/seed{k}" + (f"/region{r}" if r >= 0 else ""),
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

    # cross-model check (Sec. 5.1): every model on every model's perturbations
    heldout = {t: read_rows(images, plan[t]["heldout"]).to(device) for t in cfg.targets}
    cross_added = {s: {e: [] for e in MODEL_KEYS} for s in MODEL_KEYS}
    cross_image = {s: {e: [] for e in MODEL_KEYS} for s in MODEL_KEYS}
    clean = {e: [] for e in MODEL_KEYS}
    for run_info, res in zip(runs, results, strict=True):
        if run_info["region"] >= 0 or run_info["target"] not in heldout:
            continue
        t, p = run_info["target"], res.perturbation.to(device)
        for e, model in models.items():
            added = target_probability(model, (heldout[t] + p).clamp(0, 1), t).mean()
            as_image = target_probability(model, visualise_perturbation(p)[None], t)[0]
            cross_added[run_info["model"]][e].append(float(added))
            cross_image[run_info["model"]][e].append(float(as_image))
            run_info[f"heldout_probability_{e}"] = float(added)
            run_info[f"image_probability_{e}"] = float(as_image)
    for t in cfg.targets:
        for e, model in models.items():
            clean[e].append(float(target_probability(model, heldout[t], t).mean()))

    table = pd.DataFrame(runs)
    explain_rows = table[table.region < 0]
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
        }
    per_model["standard"]["test_accuracy"] = test_accuracy(
        standard, images, index, cfg.second.batch_size, device
    )
    per_model["second"]["test_accuracy"] = second_acc

    region_metrics = []
    ref = results[
        next(
            i
            for i, r in enumerate(runs)
            if r["model"] == "standard"
            and r["target"] == region_target
            and r["seed"] == 0
            and r["region"] < 0
        )
    ]
    for i, info in enumerate(runs):
        if info["region"] < 0:
            continue
        box = boxes[info["region"]]
        share, area = energy_near(results[i].perturbation, box)
        ref_share, _ = energy_near(ref.perturbation, box)
        info["energy_near_region"] = share
        region_metrics.append(
            {
                "box": list(box),
                "energy_near_region": share,
                "unpatched_energy_near_region": ref_share,
                "area_fraction": area,
                "target_probability": results[i].target_probability,
            }
        )

    metrics = {
        "params": {
            "eta": params.eta,
            "gamma": params.gamma,
            "b": params.batch_size,
            "num_samples": cfg.num_samples,
        },
        "chance": 1.0 / C,
        "models": per_model,
        "cross_model": {
            "added_to_heldout_images": {
                s: {e: float(np.mean(v)) for e, v in d.items()} for s, d in cross_added.items()
            },
            "perturbation_as_image": {
                s: {e: float(np.mean(v)) for e, v in d.items()} for s, d in cross_image.items()
            },
            "clean_heldout_images": {e: float(np.mean(v)) for e, v in clean.items()},
        },
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

    perts = torch.stack([r.perturbation.cpu() for r in results]).numpy()
    chunk = base.chunk_size
    with atomic_output(args.out) as tmp:
        store = create_group(
            tmp,
            {
                "params": cfg.model_dump(mode="json"),
                "models": [
                    {"key": "standard", "arch": standard.arch, "checkpoint": str(args.model)},
                    {"key": "second", "arch": second.arch, "checkpoint": str(args.second_model)},
                ],
                "class_names": index.class_names,
                "runs": table.run.tolist(),
                "region_boxes": [list(b) for b in boxes],
            },
        )
        dims4 = ("run", "channel", "y", "x")
        write_array(
            store,
            "perturbation",
            perts,
            dims=dims4,
            chunk_size=chunk,
            attrs={"meaning": "p of Algorithms 1-2, ||p||_2 <= eta", "eta": params.eta},
        )
        write_array(
            store,
            "seed_image",
            torch.stack(seed_images).numpy(),
            dims=dims4,
            chunk_size=chunk,
            attrs={"range": [0.0, 1.0]},
        )
        for name, dtype in [
            ("target", np.int64),
            ("seed_row", np.int64),
            ("region", np.int64),
            ("iterations", np.int64),
            ("first_stop", np.int64),
            ("target_probability", np.float32),
        ]:
            write_array(store, name, table[name].to_numpy(dtype), dims=("run",), chunk_size=chunk)
        write_array(
            store,
            "model",
            np.array([MODEL_KEYS.index(m) for m in table.model]),
            dims=("run",),
            chunk_size=chunk,
            attrs={"codes": list(MODEL_KEYS)},
        )

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
    with atomic_output(args.curves) as tmp:
        pd.DataFrame(curves).to_csv(tmp, index=False, float_format="%.5f")

    save_classifier(
        args.second_model,
        second,
        params=cfg.second.model_dump(mode="json"),
        seed=base.seed,
        test_accuracy=second_acc,
    )
    save_figure(
        _perturbation_figure(cfg, index, images, plan, runs, results, cfg.figure.dpi), args.figure
    )
    save_figure(
        _region_figure(runs, results, seed_images, ref, region_target, index, cfg.figure.dpi),
        args.figure_regions,
    )
    write_json(args.metrics, metrics)


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


def _perturbation_figure(cfg, index, images, plan, runs, results, dpi):
    """Fig. 3/5 analogue: rows = targets; an example of the class, then each model x seed."""
    cols = ["target example"] + [
        f"{key} s{k}" for key in MODEL_KEYS for k in range(cfg.seeds_per_target)
    ]
    cells, caps, labels = [], [], []
    for t in cfg.targets:
        ex = plan[t]["example"]
        row = [read_rows(images, ex)[0] if len(ex) else None]
        cap = [""]
        for key in MODEL_KEYS:
            for k in range(cfg.seeds_per_target):
                i = next(
                    i
                    for i, r in enumerate(runs)
                    if r["model"] == key and r["target"] == t and r["seed"] == k and r["region"] < 0
                )
                row.append(visualise_perturbation(results[i].perturbation.cpu()))
                cap.append(f"℘={runs[i]['target_probability']:.2f}")
        cells.append(row)
        caps.append(cap)
        labels.append(index.class_names[t])
    return image_grid(
        cells,
        row_labels=labels,
        col_labels=cols,
        captions=caps,
        dpi=dpi,
        title="Attack to explain: perturbations per target (Jalwana et al. Fig. 3)",
    )


def _region_figure(runs, results, seed_images, ref, target, index, dpi):
    """Fig. 4 analogue: top row seeds (with the patch), bottom row perturbations."""
    idx = [i for i, r in enumerate(runs) if r["region"] >= 0]
    ref_i = next(i for i, r in enumerate(results) if r is ref)
    top = [seed_images[ref_i]] + [seed_images[i] for i in idx]
    bottom = [visualise_perturbation(ref.perturbation.cpu())] + [
        visualise_perturbation(results[i].perturbation.cpu()) for i in idx
    ]
    caps = [
        [""] * len(top),
        [f"near={runs[ref_i].get('energy_near_region', float('nan')):.2f}"]
        + [f"near={runs[i]['energy_near_region']:.2f}" for i in idx],
    ]
    caps[1][0] = "no patch"
    cols = ["no patch"] + [f"region {runs[i]['region']}" for i in idx]
    return image_grid(
        [top, bottom],
        row_labels=["seed", "perturbation"],
        col_labels=cols,
        captions=caps,
        dpi=dpi,
        title=f"Region-specific semantics, {index.class_names[target]} (Fig. 4)",
    )


if __name__ == "__main__":
    run(main, build)
