"""Stage ``explain``: saliency, guided backprop, LIME and a random baseline (Göpfert et al.).

Explains, for the class the model predicts, three image sets side by side:
``localized`` (the localized adversarial examples, with their attack regions),
``ifgsm`` (full-image IFGSM examples of the ``attack`` stage, when given) and
``clean`` (the clean images behind both). Each set's images are stored first, then
explained shard by shard (``base.chunk_size`` images) in this process or fanned out on
Dask (``scale`` params, see :mod:`advinterp.shards`; one cluster serves every set); a killed
run resumes from the shards it completed. LIME and the random baseline are seeded per
example, so the result does not depend on where a shard runs.
"""

from __future__ import annotations

import argparse
import logging
import math
from pathlib import Path
from typing import Any

import numpy as np
import torch
import zarr

from advinterp.config.core import ScaleConfig, load
from advinterp.config.localized import ExplainConfig
from advinterp.data.artifact import open_dataset
from advinterp.errors import ParamError, StoreError
from advinterp.explainers.lime_image import felzenszwalb_segmenter, quickshift_segmenter
from advinterp.explainers.suite import EXPLAINERS, LimeSettings, explain_images
from advinterp.models.checkpoint import load_classifier
from advinterp.runtime import resolve_device
from advinterp.store import create_array, open_store, resumable_output, write_array
from stages.cli import parser, run, setup_base
from advinterp.shards import Compute, ShardJob, dask_session, run_shards, stage_fingerprint

log = logging.getLogger("advinterp.stages.explain")
SET_CODES = {"localized": 0, "clean": 1, "ifgsm": 2}
DIMS = {
    "images": ("sample", "channel", "y", "x"),
    "saliency": ("sample", "channel", "y", "x"),
    "guided_backprop": ("sample", "channel", "y", "x"),
    "lime_segments": ("sample", "y", "x"),
    "random": ("sample", "y", "x"),
    "region": ("sample", "y", "x"),
    "lime_top": ("sample", "rank"),
    "lime_weights": ("sample", "rank"),
}
MEANING = {
    "images": "the explained images, pixels in [0, 1]",
    "rows": "dataset row of the (clean) source image",
    "labels": "true class",
    "explained": "class explained = model prediction on the image",
    "saliency": "signed input gradient of the explained logit (captum Saliency, abs=False)",
    "guided_backprop": "guided-backprop attribution of the explained logit (captum)",
    "lime_segments": "LIME superpixel ids",
    "lime_top": "positively contributing superpixels, best first, -1 padded",
    "lime_weights": "their LIME weights",
    "lime_num_segments": "superpixels in the image",
    "lime_evaluated": "distinct on/off patterns classified",
    "lime_score": "R² of LIME's weighted ridge surrogate",
    "lime_seed": "LIME random_state (reproduce with lime.lime_image.LimeImageExplainer)",
    "random": "random-baseline pixel scores, uniform i.i.d.",
    "region": "attack region C (1 = may differ from the clean image): the ground truth",
    "clean_index": "index of the source image in the clean set",
    "attack_index": "position in the attack stage's store (rows/images)",
}
# What explain_images returns per image: (shape kind, dtype); see explanation_arrays.
EXPLANATION = {
    "explained": ("one", "int64"),
    "saliency": ("image", "float32"),
    "guided_backprop": ("image", "float32"),
    "lime_segments": ("map", "int32"),
    "lime_top": ("rank", "int32"),
    "lime_weights": ("rank", "float32"),
    "lime_num_segments": ("one", "int32"),
    "lime_evaluated": ("one", "int32"),
    "lime_score": ("one", "float32"),
    "lime_seed": ("one", "uint32"),
    "random": ("map", "float32"),
}


def build() -> argparse.ArgumentParser:
    p = parser(__doc__)
    p.add_argument("--dataset", type=Path, required=True)
    p.add_argument("--model", type=Path, required=True)
    p.add_argument("--localized", type=Path, required=True, help="localized_attack store")
    p.add_argument(
        "--attack", type=Path, default=None, help="attack stage store (full-image IFGSM)"
    )
    p.add_argument("--out", type=Path, required=True)
    return p


def lime_settings(cfg: ExplainConfig) -> LimeSettings:
    if cfg.lime_segmentation == "quickshift":
        q = cfg.quickshift
        seg = quickshift_segmenter(q.kernel_size, q.max_dist, q.ratio)
    else:
        f = cfg.felzenszwalb
        seg = felzenszwalb_segmenter(f.scale, f.sigma, f.min_size)
    return LimeSettings(seg, cfg.lime_num_samples, cfg.lime_batch_size, cfg.lime_top)


def ifgsm_selection(
    attack: zarr.Group, cfg: ExplainConfig, prefer_rows: np.ndarray, path: Path
) -> tuple[np.ndarray, np.ndarray]:
    """Positions (in the attack store) and images of the IFGSM examples to explain.

    Successful attacks on the standard model at ``explain.ifgsm_eps``; rows that are also
    localized-attack sources come first (so all three sets share images), then the rest
    in store order, up to ``explain.ifgsm_images``.
    """
    eps = list(attack.attrs.get("eps", []))
    keys = list(attack.attrs.get("eps_keys", []))
    match = [k for e, k in zip(eps, keys, strict=False) if math.isclose(e, cfg.ifgsm_eps)]
    if not match:
        raise ParamError(
            f"explain.ifgsm_eps={cfg.ifgsm_eps}: {path} holds eps {eps} only (attack.eps)"
        )
    sub = f"standard/{cfg.ifgsm_mode}/{match[0]}"
    if sub not in attack:
        raise StoreError(f"{path}: missing group '{sub}'")
    rows = attack["rows"][:]
    ok = np.flatnonzero(attack[f"{sub}/success"][:])
    first = ok[np.isin(rows[ok], prefer_rows)]
    pos = np.concatenate([first, ok[~np.isin(ok, first)]])[: cfg.ifgsm_images]
    pos = np.sort(pos)
    images = np.asarray(attack[f"{sub}/images"].get_orthogonal_selection((pos,)), np.float32)
    return pos, images


def explanation_arrays(
    group: zarr.Group, n: int, channels: int, h: int, w: int, top: int, chunk: int
) -> dict[str, zarr.Array]:
    """Create (or reopen, when resuming) the arrays :func:`explain_images` fills."""
    rest = {"image": (channels, h, w), "map": (h, w), "rank": (top,), "one": ()}
    return {
        key: create_array(
            group,
            key,
            (n, *rest[kind]),
            dtype,
            dims=DIMS.get(key, ("sample",)),
            chunk_size=chunk,
            attrs={"meaning": MEANING.get(key, key)},
        )
        for key, (kind, dtype) in EXPLANATION.items()
    }


def explain_shard_setup(
    store: str, name: str, model: str, explain: dict[str, Any], seed: int, device: str
) -> Compute:
    """Shard setup for :func:`advinterp.shards.run_shards`: explain ``<name>/images[slice]``.

    Args:
        store: the output being built, whose ``<name>/images`` are already written.
        explain: the ``explain`` params section (``ExplainConfig`` as JSON).
    """
    cfg = ExplainConfig.model_validate(explain)
    dev = torch.device(device)
    net = load_classifier(Path(model), dev)
    images = open_store(store)[f"{name}/images"]
    lime = lime_settings(cfg)

    def compute(sl: slice) -> dict[str, Any]:
        out = explain_images(
            net,
            np.asarray(images[sl], np.float32),
            lime=lime,
            batch_size=cfg.batch_size,
            device=dev,
            seed=seed,
            image_set=SET_CODES[name],
            start=sl.start,
            desc=f"{name} [{sl.start}, {sl.stop})",
        )
        for key, (_, dtype) in EXPLANATION.items():
            if out[key].dtype != np.dtype(dtype):  # the store would cast silently
                raise RuntimeError(f"bug: explain_images gave {key} as {out[key].dtype}")
        return out

    return compute


def write_set(parent: zarr.Group, name: str, arrays: dict[str, Any], chunk: int) -> zarr.Group:
    """Write the set's given (not explained) arrays into ``parent/name``."""
    group = parent.require_group(name)
    for key, values in arrays.items():
        values = np.asarray(values)
        write_array(
            group,
            key,
            values,
            dims=DIMS.get(key, ("sample",)),
            chunk_size=chunk,
            attrs={"meaning": MEANING.get(key, key)},
        )
    return group


def main(args: argparse.Namespace) -> None:
    base = setup_base(args.params)
    cfg = load(ExplainConfig, args.params)
    scale = load(ScaleConfig, args.params)
    device = resolve_device(base.device)
    dataset = open_dataset(args.dataset)
    load_classifier(args.model, device)  # a clear error here, not in a worker
    loc = open_store(
        args.localized, {"images": 4, "region": 3, "rows": 1, "labels": 1, "source_rows": 1}
    )
    labels_all = dataset["labels"][:]

    # The given arrays of every set first (all checks before any work), explained below.
    sets: dict[str, dict[str, Any]] = {}
    loc_rows = loc["rows"][:]
    sets["localized"] = {
        "images": np.asarray(loc["images"][:], np.float32),
        "rows": loc_rows,
        "labels": loc["labels"][:],
        "region": loc["region"][:],
    }
    clean_rows = loc["source_rows"][:]
    if args.attack is not None and cfg.ifgsm_images > 0:
        attack = open_store(args.attack, {"rows": 1})
        pos, adv = ifgsm_selection(attack, cfg, clean_rows, args.attack)
        rows = attack["rows"][:][pos]
        sets["ifgsm"] = {
            "images": adv,
            "rows": rows,
            "labels": labels_all[rows],
            "attack_index": pos,
        }
        clean_rows = np.union1d(clean_rows, rows)
    else:
        # Without --attack (or with explain.ifgsm_images = 0) only the localized and
        # clean sets are explained.
        log.info("no --attack store: full-image IFGSM examples are not explained")
    clean_images = np.asarray(dataset["images"].get_orthogonal_selection((clean_rows,)))
    sets["clean"] = {
        "images": clean_images.astype(np.float32),
        "rows": clean_rows,
        "labels": labels_all[clean_rows],
    }
    for name in ("localized", "ifgsm"):
        if name in sets:
            sets[name]["clean_index"] = np.searchsorted(clean_rows, sets[name]["rows"])

    provenance = {
        "dataset": str(args.dataset),
        "model": str(args.model),
        "localized": str(args.localized),
        "attack": None if args.attack is None else str(args.attack),
        "explain": cfg.model_dump(mode="json"),
        "seed": base.seed,
    }
    inputs = [args.dataset, args.model, args.localized]
    fp = stage_fingerprint(
        inputs + ([] if args.attack is None else [args.attack]),
        {"base": base.model_dump(mode="json"), "explain": provenance},
    )
    chunk = base.chunk_size
    with dask_session(scale), resumable_output(args.out, fp) as part:
        root = part.group(
            {
                "params": provenance,
                "sets": list(sets),
                "explainers": list(EXPLAINERS),
                "target": loc.attrs.get("target"),
                "lime_segmentation": cfg.lime_segmentation,
            },
        )
        for name, arrays in sets.items():
            n, c, h, w = arrays["images"].shape
            log.info("explaining %d %s images", n, name)
            group = write_set(root, name, arrays, chunk)
            outputs = explanation_arrays(group, n, c, h, w, cfg.lime_top, chunk)
            job = ShardJob.of(
                explain_shard_setup,
                str(part.path.resolve()),
                name,
                str(args.model.resolve()),
                cfg.model_dump(mode="json"),
                base.seed,
                str(device),
            )
            run_shards(outputs, job, n, chunk, scale=scale, markers=part.markers(name), desc=name)
        mismatch = int((root["localized/explained"][:] != loc["pred"][:]).sum())
        if mismatch:
            log.warning("%d localized examples are not predicted as their target here", mismatch)
    log.info("explanations of %s -> %s", ", ".join(sets), args.out)


if __name__ == "__main__":
    run(main, build)
