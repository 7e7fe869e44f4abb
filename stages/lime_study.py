"""Stage ``lime_study``: what decides LIME's Table 1 rank (Göpfert et al. Sec. 4).

Re-explains (a spaced subset of) the localized adversarial examples with LIME on several
segmentations and with every saliency form, and reports Table 1 for each pair beside the
median superpixel and attacked-region areas (:mod:`advinterp.analysis.lime_study`).
"""

from __future__ import annotations

import logging

import numpy as np

from advinterp.analysis.lime_study import lime_study, study_positions, study_segmenters
from advinterp.config.explain import ExplainConfig
from advinterp.config.explain_eval import ExplainEvalConfig
from advinterp.config.lime_study import LimeStudyConfig
from advinterp.config.localized import LOCALIZED, FelzenszwalbParams
from advinterp.errors import ParamError, StoreError
from advinterp.explainers.lime_image import PACKAGE_QUICKSHIFT
from advinterp.figures import save_figure
from advinterp.models.checkpoint import load_classifier
from advinterp.store import open_store, read_array, write_csv, write_json
from stages.stage import Keys, Stage, StageIO, figure, metrics, run, table

log = logging.getLogger("advinterp.stages.lime_study")

STAGE = Stage(
    name="lime_study",
    method=LOCALIZED,
    desc="Göpfert et al. Table 1 - mean ranks under several LIME segmentations (quickshift as "
    "explain and as the lime package, Felzenszwalb as explain and as the attack, the attack's "
    "own segments) and saliency forms, beside median superpixel and attacked-region areas.",
    inputs={
        "model": "artifacts/train/model.pt",
        "localized": "artifacts/localized_attack/attacks.zarr",
    },
    outputs={
        "metrics": metrics("artifacts/lime_study/metrics.json"),
        "table": table("artifacts/lime_study/table.csv"),
        "figure_segments": figure("artifacts/lime_study/segments.png"),
    },
    configs=(
        LimeStudyConfig,
        Keys(
            ExplainConfig,
            ("batch_size", "quickshift", "felzenszwalb", "lime_batch_size", "lime_top"),
        ),
        Keys(ExplainEvalConfig, ("max_superpixels",)),
    ),
)


def attack_segmentation(attrs: dict, origin: str) -> FelzenszwalbParams:
    """The Felzenszwalb params the localized attack segmented with (its store's record)."""
    try:
        return FelzenszwalbParams.model_validate(
            attrs["params"]["localized_attack"]["segmentation"]
        )
    except (KeyError, TypeError) as err:
        raise StoreError(f"{origin}: no params.localized_attack.segmentation attribute") from err


def main(io: StageIO) -> None:
    cfg = io.config(LimeStudyConfig)
    explain, evaluate = io.config(ExplainConfig), io.config(ExplainEvalConfig)
    if evaluate.max_superpixels > explain.lime_top:
        raise ParamError(
            f"explain_eval.max_superpixels={evaluate.max_superpixels} exceeds explain.lime_top="
            f"{explain.lime_top}"
        )
    loc = open_store(io.localized, {"images": 4, "region": 3, "source": 1, "segments": 3})
    positions = study_positions(loc["images"].shape[0], cfg.num_images)
    images = np.asarray(loc["images"].get_orthogonal_selection((positions,)), np.float32)
    regions = np.asarray(loc["region"].get_orthogonal_selection((positions,))).astype(bool)
    sources = read_array(loc, "source")[positions]
    attack_segments = read_array(loc, "segments")
    q, f = explain.quickshift, explain.felzenszwalb
    a = attack_segmentation(dict(loc.attrs), str(io.localized))
    segmentations = study_segmenters(
        cfg.segmentations,
        quickshift=(q.kernel_size, q.max_dist, q.ratio),
        felzenszwalb=(f.scale, f.sigma, f.min_size),
        attack=(a.scale, a.sigma, a.min_size),
        attack_segments=attack_segments,
        sources=sources,
    )
    log.info(
        "%d of %d localized examples, %d LIME samples, segmentations %s",
        len(positions),
        loc["images"].shape[0],
        cfg.lime_num_samples,
        ", ".join(cfg.segmentations),
    )
    study = lime_study(
        load_classifier(io.model, io.device),
        images,
        regions,
        positions,
        segmentations=segmentations,
        saliency_forms=cfg.saliency,
        num_samples=cfg.lime_num_samples,
        lime_batch_size=explain.lime_batch_size,
        top=explain.lime_top,
        max_superpixels=evaluate.max_superpixels,
        batch_size=explain.batch_size,
        seed=io.base.seed,
        device=io.device,
        figure_examples=cfg.figure_examples,
    )
    write_csv(io.table, study.table, float_format="%.4g")
    params = {
        "attack_segmentation": a.model_dump(mode="json"),
        "quickshift_lime": PACKAGE_QUICKSHIFT,
    }
    write_json(io.metrics, {**study.metrics, **params})
    save_figure(study.figure, io.figure_segments, cfg.figure.dpi)


if __name__ == "__main__":
    run(STAGE, main)
