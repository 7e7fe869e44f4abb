"""Stage ``a2e_robust``: generation, inpainting and sketch manipulation with a robust model.

Jalwana et al. Sec. 5.2 (Figs. 6-8): attack-to-explain on an adversarially trained
classifier with distribution samples from a class-conditional Gaussian, each task beside
Santurkar et al.'s baseline (targeted l2 PGD on the same robust model, same seed, same
budget η and as many steps as Algorithm 1 took). Scored by classifiers that took no
part in the optimisation (the standard model and a2e_explain's second architecture):
target-class confidence for generation and manipulation, and for inpainting the error
on the masked region against the original image.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import numpy as np
import torch

from advinterp.attacks.attack_to_explain import A2EParams, Penalty
from advinterp.config.a2e import A2EAttackParams, A2ERobustConfig
from advinterp.config.core import load
from advinterp.data.artifact import open_dataset, read_index
from advinterp.data.dataset import TEST, TRAIN
from advinterp.errors import CheckpointError, ParamError
from advinterp.explainers.a2e_figures import image_grid
from advinterp.explainers.robust_generation import (
    ClassGaussian,
    a2e_image,
    box_mask,
    corrupt,
    crude_sketch,
    fit_class_gaussian,
    inpainting_penalty,
    masked_mse,
    targeted_pgd_l2,
)
from advinterp.models.checkpoint import load_classifier, read_weights_file
from advinterp.models.classifier import ImageClassifier
from advinterp.progress import track
from advinterp.runtime import resolve_device
from advinterp.store import atomic_output, create_group, write_array, write_json
from stages.a2e_explain import read_rows, save_figure
from stages.cli import parser, run, setup_base

log = logging.getLogger("advinterp.stages.a2e_robust")
JUDGES = ("standard", "second", "robust")


def build() -> argparse.ArgumentParser:
    p = parser(__doc__)
    p.add_argument("--dataset", type=Path, required=True)
    p.add_argument("--model", type=Path, required=True, help="standard classifier (a judge)")
    p.add_argument("--second-model", type=Path, required=True, help="a2e_explain's (a judge)")
    p.add_argument("--robust", type=Path, required=True, help="adv_train's models directory")
    p.add_argument("--out", type=Path, required=True, help="images zarr store")
    p.add_argument("--metrics", type=Path, required=True)
    p.add_argument("--figure-generation", type=Path, required=True)
    p.add_argument("--figure-inpainting", type=Path, required=True)
    p.add_argument("--figure-sketch", type=Path, required=True)
    return p


def load_robust(directory: Path, name: str | None, device, num_classes: int):
    """The adversarially trained checkpoint ``name`` (a file stem), or the largest train eps."""
    found = sorted(Path(directory).glob("*.pt"))
    if not found:
        raise CheckpointError(f"{directory}: no robust checkpoints (run the adv_train stage)")
    if name is not None:
        path = Path(directory) / f"{name}.pt"
        if not path.is_file():
            stems = [p.stem for p in found]
            raise ParamError(f"a2e_robust.robust_model: {path} not found; have {stems}")
    else:
        eps = {p: read_weights_file(p).get("metadata", {}).get("train_eps") for p in found}
        path = max(found, key=lambda p: (eps[p] is not None, eps[p] or 0.0, p.name))
    model = load_classifier(path, device, num_classes=num_classes)
    meta = read_weights_file(path).get("metadata", {})
    return model, path, meta.get("train_eps")


def corrupt_position(
    index, row: int, size: int, side: int, rng: np.random.Generator
) -> tuple[int, int]:
    """Top-left of the corrupt square: centred on a random part box of the image when the
    dataset has part boxes (so the region holds class evidence), else anywhere."""
    centre = None
    if index.boxes is not None:
        boxes = index.boxes.xyxy[index.boxes.of(row)]
        if len(boxes):
            x0, y0, x1, y1 = boxes[rng.integers(len(boxes))]
            centre = ((y0 + y1) / 2 * size, (x0 + x1) / 2 * size)
    if centre is None:
        top, left = (int(v) for v in rng.integers(0, size - side + 1, size=2))
        return top, left
    top = int(np.clip(round(centre[0] - side / 2), 0, size - side))
    left = int(np.clip(round(centre[1] - side / 2), 0, size - side))
    return top, left


def _params(attack: A2EAttackParams) -> A2EParams:
    return A2EParams(**attack.model_dump())


def _scores(judges: dict[str, ImageClassifier], x: torch.Tensor, t: int) -> dict[str, float]:
    out = {}
    for key, model in judges.items():
        with torch.no_grad():
            logits = model(x[None])
        out[f"{key}_confidence"] = float(torch.softmax(logits, 1)[0, t])
        out[f"{key}_top1"] = float(logits.argmax(1)[0] == t)
    return out


def _mean(records: list[dict], prefix: str) -> dict[str, float]:
    keys = [k for k in records[0] if k.startswith(prefix)]
    return {k[len(prefix) :]: float(np.mean([r[k] for r in records])) for k in keys}


def main(args: argparse.Namespace) -> None:
    base = setup_base(args.params)
    cfg = load(A2ERobustConfig, args.params)
    device = resolve_device(base.device)
    group = open_dataset(args.dataset)
    index = read_index(group)
    images = group["images"]
    C, S = len(index.class_names), int(images.shape[-1])
    bad = [t for t in cfg.targets if t >= C]
    if bad:
        raise ParamError(f"a2e_robust.targets: classes {bad} do not exist ({C} classes)")
    if S % cfg.downsample:
        raise ParamError(f"a2e_robust.downsample: {cfg.downsample} does not divide {S} px")
    robust, robust_path, robust_eps = load_robust(args.robust, cfg.robust_model, device, C)
    log.info("robust model %s (train eps %s)", robust_path, robust_eps)
    judges = {
        "standard": load_classifier(args.model, device, num_classes=C),
        "second": load_classifier(args.second_model, device, num_classes=C),
        "robust": robust,
    }
    labels, split = index.labels, index.split
    rng = np.random.default_rng(base.seed)

    gaussians: dict[int, ClassGaussian] = {}

    def gaussian(t: int) -> ClassGaussian:
        if t not in gaussians:
            rows = np.flatnonzero((labels == t) & (split == TRAIN))
            if len(rows) < 2:
                raise ParamError(f"a2e_robust: class {t} has fewer than 2 training images")
            gaussians[t] = fit_class_gaussian(read_rows(images, rows), cfg.downsample, cfg.ridge)
        return gaussians[t]

    counter = iter(range(10**9))

    def gen() -> torch.Generator:
        return torch.Generator().manual_seed(base.seed * 100003 + next(counter))

    def draws(t: int, k: int) -> torch.Tensor:
        return gaussian(t).sample(k, gen(), (S, S)).to(device)

    def baseline(
        seed: torch.Tensor, t: int, eta: float, steps: int, penalty: Penalty | None = None
    ) -> torch.Tensor:
        """Santurkar et al.'s image from the same seed: same budget η, as many steps as A2E."""
        target = torch.tensor([t], device=device)
        return targeted_pgd_l2(
            robust,
            seed[None],
            target,
            eps=eta,
            steps=steps,
            step_size=cfg.pgd_step_size,
            penalty=penalty,
        )[0]

    # 5.2.1 generation: a Gaussian seed of the target class -> A2E (no refinement) vs PGD
    gp = _params(cfg.generation)
    gen_rec, gen_img = [], {"seed": [], "a2e": [], "pgd": []}
    gen_targets = [t for t in cfg.targets for _ in range(cfg.seeds_per_target)]
    for t in track(gen_targets, total=len(gen_targets), desc="generation", unit="image"):
        seed = draws(t, 1)[0]
        a2e, res = a2e_image(robust, seed, draws(t, cfg.num_samples), t, gp, gen())
        pgd = baseline(seed, t, gp.eta, res.iterations)
        rec = {"target": t, "iterations": res.iterations, "a2e_probability": res.target_probability}
        for name, x in (("seed", seed), ("a2e", a2e), ("pgd", pgd)):
            rec |= {f"{name}/{k}": v for k, v in _scores(judges, x, t).items()}
            gen_img[name].append(x.cpu())
        gen_rec.append(rec)

    # 5.2.2 inpainting (Eq. 4): a corrupted test image as seed, mask F, β
    ic = cfg.inpainting
    ip = _params(ic.attack)
    test_rows = np.flatnonzero(split == TEST)
    classes = rng.permutation(np.unique(labels[test_rows]))[: ic.images]
    inp_rows = np.array([rng.choice(test_rows[labels[test_rows] == c]) for c in classes])
    side = max(1, round(ic.mask_size * S))
    inp_rec, inp_img = [], {k: [] for k in ("original", "corrupted", "mask", "a2e", "pgd")}
    originals = read_rows(images, inp_rows).to(device)
    for original, row in track(
        zip(originals, inp_rows, strict=True), total=len(inp_rows), desc="inpainting", unit="image"
    ):
        t = int(labels[row])
        top, left = corrupt_position(index, int(row), S, side, rng)
        mask = box_mask((S, S), (top, left, side, side)).to(device)
        seed = corrupt(original, mask, ic.fill)
        penalty = inpainting_penalty(mask, ic.beta)
        a2e, res = a2e_image(robust, seed, draws(t, cfg.num_samples), t, ip, gen(), penalty=penalty)
        pgd = baseline(seed, t, ip.eta, res.iterations, penalty)
        rec = {"row": int(row), "label": t, "iterations": res.iterations}
        for name, x in (("original", original), ("corrupted", seed), ("a2e", a2e), ("pgd", pgd)):
            rec[f"{name}/masked_mse"] = masked_mse(x, original, mask)
            rec[f"{name}/unmasked_mse"] = masked_mse(x, original, 1 - mask)
            rec |= {f"{name}/{k}": v for k, v in _scores(judges, x, t).items()}
            inp_img[name].append(x.cpu())
        inp_img["mask"].append(mask.cpu())
        inp_rec.append(rec)

    # 5.2.3 manipulation: a crude sketch of a target-class test image, with refinement
    sc = cfg.sketch
    sp = _params(sc.attack)
    sk_rec, sk_img = [], {k: [] for k in ("reference", "sketch", "a2e", "pgd")}
    for t in track(cfg.targets, total=len(cfg.targets), desc="sketch", unit="image"):
        rows = np.flatnonzero((labels == t) & (split == TEST))
        row = int(rows[-1]) if len(rows) else int(np.flatnonzero(labels == t)[0])
        reference = read_rows(images, np.array([row]))[0].to(device)
        sketch = crude_sketch(reference.cpu(), sc.n_segments, sc.compactness).to(device)
        a2e, res = a2e_image(robust, sketch, draws(t, cfg.num_samples), t, sp, gen(), refine=True)
        pgd = baseline(sketch, t, sp.eta, res.iterations)
        rec = {
            "row": row,
            "target": t,
            "iterations": res.iterations,
            "refinements": res.refinements,
        }
        for name, x in (("sketch", sketch), ("a2e", a2e), ("pgd", pgd)):
            rec |= {f"{name}/{k}": v for k, v in _scores(judges, x, t).items()}
        for name, x in (("reference", reference), ("sketch", sketch), ("a2e", a2e), ("pgd", pgd)):
            sk_img[name].append(x.cpu())
        sk_rec.append(rec)

    metrics = {
        "robust_model": {"checkpoint": str(robust_path), "train_eps": robust_eps},
        "chance": 1.0 / C,
        "generation": {
            "eta": gp.eta,
            "n": len(gen_rec),
            **{m: _mean(gen_rec, f"{m}/") for m in ("seed", "a2e", "pgd")},
            "mean_iterations": float(np.mean([r["iterations"] for r in gen_rec])),
        },
        "inpainting": {
            "eta": ip.eta,
            "beta": ic.beta,
            "n": len(inp_rec),
            **{m: _mean(inp_rec, f"{m}/") for m in ("corrupted", "a2e", "pgd", "original")},
            "mean_iterations": float(np.mean([r["iterations"] for r in inp_rec])),
        },
        "sketch": {
            "eta": sp.eta,
            "n": len(sk_rec),
            **{m: _mean(sk_rec, f"{m}/") for m in ("sketch", "a2e", "pgd")},
            "mean_iterations": float(np.mean([r["iterations"] for r in sk_rec])),
        },
    }

    chunk = base.chunk_size
    dims4 = ("image", "channel", "y", "x")
    with atomic_output(args.out) as tmp:
        store = create_group(
            tmp,
            {
                "params": cfg.model_dump(mode="json"),
                "robust_model": str(robust_path),
                "class_names": index.class_names,
            },
        )
        for task, imgs, recs, key in (
            ("generation", gen_img, gen_rec, "target"),
            ("inpainting", inp_img, inp_rec, "label"),
            ("sketch", sk_img, sk_rec, "target"),
        ):
            sub = store.create_group(task)
            for name, xs in imgs.items():
                arr = torch.stack(xs).numpy()
                dims = ("image", "y", "x") if arr.ndim == 3 else dims4
                write_array(sub, name, arr, dims=dims, chunk_size=chunk, attrs={"range": [0, 1]})
            write_array(
                sub,
                key,
                np.array([r[key] for r in recs], np.int64),
                dims=("image",),
                chunk_size=chunk,
            )

    names = index.class_names

    def cap(rec: dict, name: str) -> str:
        return f"std {rec[f'{name}/standard_confidence']:.2f}"

    fig = image_grid(
        [[gen_img[m][i] for m in ("seed", "a2e", "pgd")] for i in range(len(gen_rec))],
        row_labels=[names[r["target"]] for r in gen_rec],
        col_labels=["Gaussian seed", "attack to explain", "PGD (Santurkar)"],
        captions=[[cap(r, m) for m in ("seed", "a2e", "pgd")] for r in gen_rec],
        title=f"Generation, robust model, η={gp.eta:g} (Fig. 6); caption: standard model's p(target)",
        dpi=cfg.figure.dpi,
    )
    save_figure(fig, args.figure_generation)
    fig = image_grid(
        [
            [inp_img[m][i] for m in ("original", "corrupted", "a2e", "pgd")]
            for i in range(len(inp_rec))
        ],
        row_labels=[names[r["label"]] for r in inp_rec],
        col_labels=["original", "corrupted seed", "attack to explain", "PGD (Santurkar)"],
        captions=[
            [""] + [f"mse {r[f'{m}/masked_mse']:.3f}" for m in ("corrupted", "a2e", "pgd")]
            for r in inp_rec
        ],
        title=f"Inpainting, Eq. 4, β={ic.beta:g}, η={ip.eta:g} (Fig. 7); caption: masked-region MSE",
        dpi=cfg.figure.dpi,
    )
    save_figure(fig, args.figure_inpainting)
    fig = image_grid(
        [[sk_img[m][i] for m in ("reference", "sketch", "a2e", "pgd")] for i in range(len(sk_rec))],
        row_labels=[names[r["target"]] for r in sk_rec],
        col_labels=[
            "sketched image",
            "crude sketch (seed)",
            "attack to explain",
            "PGD (Santurkar)",
        ],
        captions=[[""] + [cap(r, m) for m in ("sketch", "a2e", "pgd")] for r in sk_rec],
        title=f"Sketch manipulation, η={sp.eta:g} (Fig. 8); caption: standard model's p(target)",
        dpi=cfg.figure.dpi,
    )
    save_figure(fig, args.figure_sketch)
    write_json(args.metrics, metrics)
    log.info(
        "generation p(target) by the standard model: a2e %.3f, pgd %.3f; inpainting masked MSE: "
        "a2e %.4f, pgd %.4f, corrupted %.4f",
        metrics["generation"]["a2e"]["standard_confidence"],
        metrics["generation"]["pgd"]["standard_confidence"],
        metrics["inpainting"]["a2e"]["masked_mse"],
        metrics["inpainting"]["pgd"]["masked_mse"],
        metrics["inpainting"]["corrupted"]["masked_mse"],
    )


if __name__ == "__main__":
    run(main, build)
