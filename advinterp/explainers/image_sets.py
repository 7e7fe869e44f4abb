"""The image sets Göpfert et al.'s explainers are compared on, and how they are stored.

Three sets are explained side by side: ``localized`` (the localized adversarial examples,
with their attack regions: the ground truth of Sec. 4), ``ifgsm`` (full-image IFGSM
examples of the ``attack`` stage) and ``clean`` (the clean images behind both). Each set
is a group of the explanations store: its given arrays (images, rows, labels, region,
indices into the clean set) are written first, then :func:`explain_shard_setup` fills the
arrays of :data:`~advinterp.explainers.suite.OUTPUTS` shard by shard.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any

import numpy as np
import torch
import zarr

from advinterp.config.explain import ExplainConfig
from advinterp.data.adversarial import STANDARD, ChainLayout
from advinterp.errors import ParamError, StoreError
from advinterp.explainers.lime_image import (
    LimeSettings,
    felzenszwalb_segmenter,
    quickshift_segmenter,
)
from advinterp.explainers.suite import OUTPUTS, explain_images
from advinterp.models.checkpoint import load_classifier
from advinterp.runtime import Precision
from advinterp.shards import Compute
from advinterp.store import (
    create_array,
    decoded,
    open_store,
    read_array,
    require_array,
    write_array,
)

log = logging.getLogger(__name__)

# Seeds of the random explainers derive from the set's code (see ExampleSlice).
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
    "saliency": "relu of the input gradient of J(x, explained), J per the 'saliency' attr "
    "(captum Saliency, abs=False, negatives discarded)",
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


def lime_settings(cfg: ExplainConfig, precision: Precision) -> LimeSettings:
    """LIME as the ``explain`` params configure it (quickshift or Felzenszwalb superpixels),
    its forwards at ``base.precision``."""
    if cfg.lime_segmentation == "quickshift":
        q = cfg.quickshift
        seg = quickshift_segmenter(q.kernel_size, q.max_dist, q.ratio)
    else:
        f = cfg.felzenszwalb
        seg = felzenszwalb_segmenter(f.scale, f.sigma, f.min_size)
    return LimeSettings(
        seg, cfg.lime_num_samples, cfg.lime_batch_size, cfg.lime_top, precision=precision
    )


def ifgsm_selection(
    attack: zarr.Group, cfg: ExplainConfig, prefer_rows: np.ndarray, origin: Path
) -> tuple[np.ndarray, np.ndarray]:
    """Positions (in the attack store) and images of the IFGSM examples to explain.

    Successful attacks on the standard model at ``explain.ifgsm_eps``; rows that are also
    localized-attack sources come first (so all three sets share images), then the rest
    in store order, up to ``explain.ifgsm_images``.

    Shape:
        returns: positions (M,) int64 sorted, images (M, 3, H, W) float32 in [0, 1].
    """
    layout = ChainLayout.from_attrs(attack.attrs, str(origin))
    if not any(math.isclose(e, cfg.ifgsm_eps) for e in layout.eps):
        raise ParamError(
            f"explain.ifgsm_eps={cfg.ifgsm_eps}: {origin} holds eps {list(layout.eps)} only "
            "(attack.eps)"
        )
    paths = [
        path
        for model, mode, eps, path in layout.adversarial_sets()
        if model.key == STANDARD and mode == cfg.ifgsm_mode and math.isclose(eps, cfg.ifgsm_eps)
    ]
    if not paths or paths[0] not in attack:
        raise StoreError(
            f"{origin}: missing the {STANDARD} model's {cfg.ifgsm_mode} eps {cfg.ifgsm_eps} group"
        )
    where = f"{origin}/{paths[0]}"
    rows = read_array(attack, "rows", str(origin))
    ok = np.flatnonzero(read_array(attack, f"{paths[0]}/success", where))
    first = ok[np.isin(rows[ok], prefer_rows)]
    pos = np.concatenate([first, ok[~np.isin(ok, first)]])[: cfg.ifgsm_images]
    pos = np.sort(pos)
    adv = decoded(attack, f"{paths[0]}/images", where)
    images = np.asarray(adv.get_orthogonal_selection((pos,)), np.float32)
    return pos, images


def gather_sets(
    localized: zarr.Group,
    dataset: zarr.Group,
    cfg: ExplainConfig,
    attack: zarr.Group | None = None,
    attack_origin: Path | None = None,
) -> dict[str, dict[str, np.ndarray]]:
    """The given arrays of every set to explain, in order localized, ifgsm, clean.

    ``ifgsm`` is present when ``attack`` is given and ``explain.ifgsm_images`` > 0; the
    clean set holds the source images of both others (sorted dataset rows), and
    ``clean_index`` maps each localized / IFGSM example to its clean image.
    """
    labels_all = read_array(dataset, "labels")
    loc = {key: read_array(localized, key) for key in ("images", "rows", "labels", "region")}
    sets: dict[str, dict[str, np.ndarray]] = {
        "localized": {**loc, "images": np.asarray(loc["images"], np.float32)}
    }
    clean_rows = read_array(localized, "source_rows")
    if attack is not None and cfg.ifgsm_images > 0:
        pos, adv = ifgsm_selection(attack, cfg, clean_rows, attack_origin or Path("attack"))
        rows = read_array(attack, "rows")[pos]
        sets["ifgsm"] = {
            "images": adv,
            "rows": rows,
            "labels": labels_all[rows],
            "attack_index": pos,
        }
        clean_rows = np.union1d(clean_rows, rows)
    else:
        log.info("no attack store or explain.ifgsm_images = 0: no full-image IFGSM set")
    images = require_array(dataset, "images")
    clean_images = np.asarray(images.get_orthogonal_selection((clean_rows,)))
    sets["clean"] = {
        "images": clean_images.astype(np.float32),
        "rows": clean_rows,
        "labels": labels_all[clean_rows],
    }
    for name in ("localized", "ifgsm"):
        if name in sets:
            sets[name]["clean_index"] = np.searchsorted(clean_rows, sets[name]["rows"])
    return sets


def write_set(parent: zarr.Group, name: str, arrays: dict[str, Any], chunk: int) -> zarr.Group:
    """Write the set's given (not explained) arrays into ``parent/name``."""
    group = parent.require_group(name)
    for key, values in arrays.items():
        write_array(
            group,
            key,
            np.asarray(values),
            dims=DIMS.get(key, ("sample",)),
            chunk_size=chunk,
            attrs={"meaning": MEANING.get(key, key)},
        )
    return group


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
        for key, (kind, dtype) in OUTPUTS.items()
    }


def explain_shard_setup(
    store: str,
    name: str,
    model: str,
    explain: dict[str, Any],
    seed: int,
    device: str,
    precision: Precision,
) -> Compute:
    """Shard setup for :func:`advinterp.shards.run_shards`: explain ``<name>/images[slice]``.

    Args:
        store: the output being built, whose ``<name>/images`` are already written.
        explain: the ``explain`` params section (``ExplainConfig`` as JSON).
        precision: ``base.precision`` of LIME's forwards (saliency and guided backprop
            are gradients, always fp32).
    """
    cfg = ExplainConfig.model_validate(explain)
    dev = torch.device(device)
    net = load_classifier(Path(model), dev)
    images = require_array(open_store(store), f"{name}/images", store)
    lime = lime_settings(cfg, precision)

    def compute(sl: slice) -> dict[str, Any]:
        out = explain_images(
            net,
            np.asarray(images[sl], np.float32),
            lime=lime,
            batch_size=cfg.batch_size,
            device=dev,
            seed=seed,
            saliency=cfg.saliency,
            image_set=SET_CODES[name],
            start=sl.start,
            desc=f"{name} [{sl.start}, {sl.stop})",
        )
        for key, (_, dtype) in OUTPUTS.items():
            if out[key].dtype != np.dtype(dtype):  # the store would cast silently
                raise RuntimeError(f"bug: explain_images gave {key} as {out[key].dtype}")
        return out

    return compute
