"""Generation, inpainting and sketch manipulation with a robust classifier, scored.

Jalwana et al. Sec. 5.2 (Figs. 6-8): attack-to-explain on an adversarially trained
classifier with distribution samples from a class-conditional Gaussian, each task beside
Santurkar et al.'s baseline (targeted l2 PGD on the same robust model, same seed, same
budget η and as many steps as Algorithm 1 took). Every η is stated at the paper's image
size (``reference_size``, 224 px) and scaled to ours at equal rms per pixel value
(:func:`~advinterp.attacks.attack_to_explain.eta_at_size`), as in ``a2e_explain``.

Scored by target-class confidence and top-1 (generation and manipulation; for inpainting
the true class and the error on the masked region against the original image) under
:data:`JUDGES`. Only the second architecture is an independent judge: it is trained from
scratch and took no part in producing the robust model (:func:`check_independent` refuses
one that did). The robust model scores its own images, and the parent, the standard model
``adv_train`` fine-tunes into the robust one, is reported beside them but shares its
weights' history, so it is no independent judge. The building blocks are
:mod:`advinterp.explainers.robust_generation`.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import zarr

from advinterp.analysis.spread import spread
from advinterp.attacks.attack_to_explain import (
    A2EParams,
    Penalty,
    at_image_size,
    attack_to_explain,
)
from advinterp.config.a2e import A2EAttackParams
from advinterp.config.a2e_robust import A2ERobustConfig
from advinterp.config.classes import resolve_classes
from advinterp.data.dataset import TEST, TRAIN, AttributeIndex
from advinterp.data.rows import read_rows
from advinterp.errors import CheckpointError, ParamError
from advinterp.explainers.robust_generation import (
    ClassGaussian,
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

log = logging.getLogger(__name__)

JUDGES = ("second", "robust", "parent")
"""The classifiers that score every image: the independent judge (:data:`INDEPENDENT`),
the robust model (also the optimised one) and its parent (the model it was fine-tuned
from; not independent)."""
INDEPENDENT = "second"
"""The judge that took no part in producing the robust model: the headline numbers'."""
MAX_LINEAGE = 16


def _source_path(source: str, checkpoint: Path) -> Path:
    """Where the ``source`` recorded in ``checkpoint`` lives. A stage records its input as
    given, relative to the directory it ran in (the repository root), which need not be
    ours: the first existing of the working directory and each directory above
    ``checkpoint`` (``artifacts/adv_train/models/at_0.02.pt`` names
    ``artifacts/train/model.pt`` from the root above it)."""
    recorded = Path(source)
    if recorded.is_absolute():
        return recorded.resolve()
    for base in (Path.cwd(), *checkpoint.parents):
        if (base / recorded).is_file():
            return (base / recorded).resolve()
    return (Path.cwd() / recorded).resolve()


def lineage(path: Path) -> list[Path]:
    """``path`` and the checkpoints it was derived from, nearest first: the chain of
    ``metadata["source"]`` entries (``adv_train`` records the model it fine-tuned), each
    found by :func:`_source_path`; a missing file ends the chain."""
    chain = [Path(path).resolve()]
    while len(chain) < MAX_LINEAGE and chain[-1].is_file():
        source = read_weights_file(chain[-1]).get("metadata", {}).get("source")
        if not source:
            break
        found = _source_path(str(source), chain[-1])
        if found in chain:
            break
        chain.append(found)
    return chain


def _same_weights(a: Path, b: Path) -> bool:
    """Whether two checkpoint files hold identical weights (a copy under another name)."""
    sa, sb = (read_weights_file(p).get("state_dict", {}) for p in (a, b))
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def took_part(judge: Path, model: Path) -> bool:
    """Whether checkpoint ``judge`` took part in producing checkpoint ``model``: it is
    ``model``, one of its ancestors or shares one (by :func:`lineage`), or holds the
    same weights as one of them."""
    ours, theirs = lineage(judge), lineage(model)
    if set(ours) & set(theirs):
        return True
    present = [(a, b) for a in ours for b in theirs if a.is_file() and b.is_file()]
    return any(_same_weights(a, b) for a, b in present)


def check_independent(judge: Path, model: Path, what: str) -> None:
    """Refuse ``judge`` (named ``what`` in the error) if it took part in producing
    ``model`` (:func:`took_part`): a judge fine-tuned into the model shares its gradients.

    Raises:
        CheckpointError: it did.
    """
    if took_part(judge, model):
        raise CheckpointError(
            f"{what}: {judge} took part in producing the robust model {model} "
            f"(lineage {[str(p) for p in lineage(model)]}); an independent judge must not"
        )


def load_robust(
    directory: Path, name: str | None, device: torch.device, num_classes: int
) -> tuple[ImageClassifier, Path, float | None]:
    """The adversarially trained checkpoint ``name`` (a file stem) of ``directory``, or
    the one with the largest train eps; returns it, its path and its train eps."""
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
    index: AttributeIndex, row: int, size: int, side: int, rng: np.random.Generator
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


def a2e_params(
    attack: A2EAttackParams, image_shape: tuple[int, int], reference_size: int | None
) -> A2EParams:
    """The attack's hyper-parameters from their params section, η (stated at
    ``reference_size``) scaled to ``image_shape`` at equal rms per pixel value."""
    return at_image_size(A2EParams(**attack.model_dump()), image_shape, reference_size)


def judge_scores(
    judges: Mapping[str, ImageClassifier], x: torch.Tensor, t: int
) -> dict[str, float]:
    """``<judge>_confidence`` (softmax probability of class ``t``) and ``<judge>_top1``
    (1.0 when ``t`` is the top class) of one image, per judge (each in eval mode).

    Shape:
        x: (3, H, W) float32 in [0, 1].
    """
    out = {}
    for key, model in judges.items():
        with torch.no_grad():
            logits = model(x[None])
        out[f"{key}_confidence"] = float(torch.softmax(logits, 1)[0, t])
        out[f"{key}_top1"] = float(logits.argmax(1)[0] == t)
    return out


def mean_by_prefix(records: list[dict[str, Any]], prefix: str) -> dict[str, float]:
    """Mean over ``records`` of every key starting with ``prefix``, the prefix dropped
    (the keys are those of the first record)."""
    keys = [k for k in records[0] if k.startswith(prefix)]
    return {k[len(prefix) :]: float(np.mean([r[k] for r in records])) for k in keys}


@dataclass(frozen=True)
class RobustTask:
    """The images and per-image records of one task.

    Attributes:
        images: name -> one (3, H, W) (or (H, W) for masks) float32 CPU tensor per image,
            in [0, 1].
        records: one dict per image: its class under ``key``, iterations, and per
            method ``<method>/<judge>_confidence`` etc.
        key: the record field holding the image's class (``target`` or ``label``).
    """

    images: dict[str, list[torch.Tensor]]
    records: list[dict[str, Any]]
    key: str

    def arrays(self) -> dict[str, np.ndarray]:
        """``images`` stacked: (n, 3, H, W) or (n, H, W) float32 each."""
        return {name: torch.stack(xs).numpy() for name, xs in self.images.items()}

    def classes(self) -> np.ndarray:
        """(n,) int64: the class of each image."""
        return np.array([r[self.key] for r in self.records], np.int64)


@dataclass(frozen=True)
class RobustTasks:
    """The three tasks of Sec. 5.2 and their summary (means over images)."""

    generation: RobustTask
    inpainting: RobustTask
    sketch: RobustTask
    metrics: dict[str, Any]

    @property
    def tasks(self) -> dict[str, RobustTask]:
        return {
            "generation": self.generation,
            "inpainting": self.inpainting,
            "sketch": self.sketch,
        }


class _Draws:
    """The random draws of one run, numbered in the order they are asked for, and the
    PGD baseline on the robust model."""

    def __init__(
        self,
        robust: ImageClassifier,
        images: zarr.Array,
        index: AttributeIndex,
        cfg: A2ERobustConfig,
        seed: int,
        device: torch.device,
    ) -> None:
        self.robust, self.images, self.index, self.cfg = robust, images, index, cfg
        self.seed, self.device = seed, device
        self.size = int(images.shape[-1])
        self.gaussians: dict[int, ClassGaussian] = {}
        self.counter = iter(range(10**9))

    def gaussian(self, t: int) -> ClassGaussian:
        """N(μ_I, Σ_I) of class ``t``'s train images, fitted on first use."""
        if t not in self.gaussians:
            labels, split = self.index.labels, self.index.split
            rows = np.flatnonzero((labels == t) & (split == TRAIN))
            if len(rows) < 2:
                raise ParamError(f"a2e_robust: class {t} has fewer than 2 training images")
            self.gaussians[t] = fit_class_gaussian(
                read_rows(self.images, rows), self.cfg.downsample, self.cfg.ridge
            )
        return self.gaussians[t]

    def gen(self) -> torch.Generator:
        """The next generator: ``seed * 100003 + k`` for the k-th call."""
        return torch.Generator().manual_seed(self.seed * 100003 + next(self.counter))

    def draws(self, t: int, k: int) -> torch.Tensor:
        """k Gaussian samples of class ``t``. Shape: (k, 3, S, S) in [0, 1]."""
        return self.gaussian(t).sample(k, self.gen(), (self.size, self.size)).to(self.device)

    def baseline(
        self, seed: torch.Tensor, t: int, eta: float, steps: int, penalty: Penalty | None = None
    ) -> torch.Tensor:
        """Santurkar et al.'s image from the same seed: same budget η, as many steps as A2E."""
        target = torch.tensor([t], device=self.device)
        return targeted_pgd_l2(
            self.robust,
            seed[None],
            target,
            eps=eta,
            steps=steps,
            step_size=self.cfg.pgd_step_size,
            penalty=penalty,
        )[0]


def robust_tasks(
    robust: ImageClassifier,
    judges: Mapping[str, ImageClassifier],
    images: zarr.Array,
    index: AttributeIndex,
    cfg: A2ERobustConfig,
    *,
    seed: int,
    device: torch.device,
) -> RobustTasks:
    """Sec. 5.2.1-5.2.3 with ``robust``, each image beside the l2 PGD baseline.

    The k-th random draw (a Gaussian sample set, or the mini-batches of one attack)
    uses ``torch.Generator().manual_seed(seed * 100003 + k)``; the inpainting images and
    their corrupt squares come from ``numpy.random.default_rng(seed)``.

    Args:
        judges: :data:`JUDGES` -> classifier in eval mode on ``device``.

    Shape:
        images: (N, 3, S, S) zarr array in [0, 1].
    """
    C, S = len(index.class_names), int(images.shape[-1])
    targets = resolve_classes(cfg.targets, index.class_names, seed, "a2e_robust.targets")
    if S % cfg.downsample:
        raise ParamError(f"a2e_robust.downsample: {cfg.downsample} does not divide {S} px")
    rng = np.random.default_rng(seed)
    draws = _Draws(robust, images, index, cfg, seed, device)
    generation = _generation(judges, cfg, draws, targets)
    inpainting = _inpainting(judges, cfg, draws, rng)
    sketch = _sketch(judges, cfg, draws, targets)
    gen_rec, inp_rec, sk_rec = generation.records, inpainting.records, sketch.records

    def eta(attack: A2EAttackParams) -> dict[str, float]:
        """The η used (pixel units at our size) and as stated at the reference size."""
        used = a2e_params(attack, (S, S), cfg.reference_size).eta
        return {"eta": used, "eta_at_reference_size": attack.eta}

    metrics = {
        "chance": 1.0 / C,
        "reference_size": cfg.reference_size,
        "independent_judge": INDEPENDENT,
        "headline": _headline(gen_rec),
        "generation": {
            **eta(cfg.generation),
            "n": len(gen_rec),
            **{m: mean_by_prefix(gen_rec, f"{m}/") for m in ("seed", "a2e", "pgd")},
            "mean_iterations": float(np.mean([r["iterations"] for r in gen_rec])),
        },
        "inpainting": {
            **eta(cfg.inpainting.attack),
            "beta": cfg.inpainting.beta,
            "n": len(inp_rec),
            **{
                m: mean_by_prefix(inp_rec, f"{m}/") for m in ("corrupted", "a2e", "pgd", "original")
            },
            "mean_iterations": float(np.mean([r["iterations"] for r in inp_rec])),
        },
        "sketch": {
            **eta(cfg.sketch.attack),
            "n": len(sk_rec),
            **{m: mean_by_prefix(sk_rec, f"{m}/") for m in ("sketch", "a2e", "pgd")},
            "mean_iterations": float(np.mean([r["iterations"] for r in sk_rec])),
        },
    }
    return RobustTasks(generation, inpainting, sketch, metrics)


def _headline(gen_rec: list[dict[str, Any]]) -> dict[str, Any]:
    """Generation's headline numbers as spreads over the seed index: for seed k, the mean
    over the targets of the k-th generated image, judged by the independent judge (the
    share classified as the target, and its mean target probability) for the Gaussian
    seed, attack to explain and PGD."""
    seeds = sorted({r["seed_index"] for r in gen_rec})
    out: dict[str, Any] = {
        "over": f"seed index; each value the mean over the targets; judged by {INDEPENDENT}"
    }
    for method in ("seed", "a2e", "pgd"):
        out[method] = {
            what: spread(
                np.mean(
                    [r[f"{method}/{INDEPENDENT}_{what}"] for r in gen_rec if r["seed_index"] == k]
                )
                for k in seeds
            )
            for what in ("top1", "confidence")
        }
    return {"generation": out}


def _generation(
    judges: Mapping[str, ImageClassifier], cfg: A2ERobustConfig, d: _Draws, targets: list[int]
) -> RobustTask:
    """5.2.1: a Gaussian seed of the target class -> A2E (no refinement) vs PGD."""
    gp = a2e_params(cfg.generation, (d.size, d.size), cfg.reference_size)
    gen_rec: list[dict[str, Any]] = []
    gen_img: dict[str, list[torch.Tensor]] = {"seed": [], "a2e": [], "pgd": []}
    gen_targets = [(t, k) for t in targets for k in range(cfg.seeds_per_target)]
    for t, k in track(gen_targets, total=len(gen_targets), desc="generation", unit="image"):
        seed = d.draws(t, 1)[0]
        res = attack_to_explain(
            d.robust, seed, d.draws(t, cfg.num_samples), t, gp, d.gen(), refine=False
        )
        a2e = res.applied_to(seed)
        pgd = d.baseline(seed, t, gp.eta, res.iterations)
        rec: dict[str, Any] = {
            "target": t,
            "seed_index": k,
            "iterations": res.iterations,
            "a2e_probability": res.target_probability,
        }
        for name, x in (("seed", seed), ("a2e", a2e), ("pgd", pgd)):
            rec |= {f"{name}/{k}": v for k, v in judge_scores(judges, x, t).items()}
            gen_img[name].append(x.cpu())
        gen_rec.append(rec)
    return RobustTask(gen_img, gen_rec, "target")


def _inpainting(
    judges: Mapping[str, ImageClassifier],
    cfg: A2ERobustConfig,
    d: _Draws,
    rng: np.random.Generator,
) -> RobustTask:
    """5.2.2 (Eq. 4): a corrupted test image of ``inpainting.images`` classes as seed, mask F."""
    labels, split, S = d.index.labels, d.index.split, d.size
    ic = cfg.inpainting
    ip = a2e_params(ic.attack, (S, S), cfg.reference_size)
    test_rows = np.flatnonzero(split == TEST)
    classes = rng.permutation(np.unique(labels[test_rows]))[: ic.images]
    inp_rows = np.array([rng.choice(test_rows[labels[test_rows] == c]) for c in classes])
    side = max(1, round(ic.mask_size * S))
    inp_rec: list[dict[str, Any]] = []
    inp_img: dict[str, list[torch.Tensor]] = {
        k: [] for k in ("original", "corrupted", "mask", "a2e", "pgd")
    }
    originals = read_rows(d.images, inp_rows).to(d.device)
    for original, row in track(
        zip(originals, inp_rows, strict=True), total=len(inp_rows), desc="inpainting", unit="image"
    ):
        t = int(labels[row])
        top, left = corrupt_position(d.index, int(row), S, side, rng)
        mask = box_mask((S, S), (top, left, side, side)).to(d.device)
        seed = corrupt(original, mask, ic.fill)
        penalty = inpainting_penalty(mask, ic.beta)
        samples = d.draws(t, cfg.num_samples)
        res = attack_to_explain(
            d.robust, seed, samples, t, ip, d.gen(), penalty=penalty, refine=False
        )
        a2e = res.applied_to(seed)
        pgd = d.baseline(seed, t, ip.eta, res.iterations, penalty)
        rec: dict[str, Any] = {"row": int(row), "label": t, "iterations": res.iterations}
        for name, x in (("original", original), ("corrupted", seed), ("a2e", a2e), ("pgd", pgd)):
            rec[f"{name}/masked_mse"] = masked_mse(x, original, mask)
            rec[f"{name}/unmasked_mse"] = masked_mse(x, original, 1 - mask)
            rec |= {f"{name}/{k}": v for k, v in judge_scores(judges, x, t).items()}
            inp_img[name].append(x.cpu())
        inp_img["mask"].append(mask.cpu())
        inp_rec.append(rec)
    return RobustTask(inp_img, inp_rec, "label")


def _sketch(
    judges: Mapping[str, ImageClassifier], cfg: A2ERobustConfig, d: _Draws, targets: list[int]
) -> RobustTask:
    """5.2.3: a crude sketch of a target-class test image as seed, with refinement."""
    labels, split = d.index.labels, d.index.split
    sc = cfg.sketch
    sp = a2e_params(sc.attack, (d.size, d.size), cfg.reference_size)
    sk_rec: list[dict[str, Any]] = []
    sk_img: dict[str, list[torch.Tensor]] = {k: [] for k in ("reference", "sketch", "a2e", "pgd")}
    for t in track(targets, total=len(targets), desc="sketch", unit="image"):
        rows = np.flatnonzero((labels == t) & (split == TEST))
        row = int(rows[-1]) if len(rows) else int(np.flatnonzero(labels == t)[0])
        reference = read_rows(d.images, np.array([row]))[0].to(d.device)
        sketch = crude_sketch(reference.cpu(), sc.n_segments, sc.compactness).to(d.device)
        samples = d.draws(t, cfg.num_samples)
        res = attack_to_explain(d.robust, sketch, samples, t, sp, d.gen(), refine=True)
        a2e = res.applied_to(sketch)
        pgd = d.baseline(sketch, t, sp.eta, res.iterations)
        rec: dict[str, Any] = {
            "row": row,
            "target": t,
            "iterations": res.iterations,
            "refinements": res.refinements,
        }
        for name, x in (("sketch", sketch), ("a2e", a2e), ("pgd", pgd)):
            rec |= {f"{name}/{k}": v for k, v in judge_scores(judges, x, t).items()}
        for name, x in (("reference", reference), ("sketch", sketch), ("a2e", a2e), ("pgd", pgd)):
            sk_img[name].append(x.cpu())
        sk_rec.append(rec)
    return RobustTask(sk_img, sk_rec, "target")
