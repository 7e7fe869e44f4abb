"""Stage ``compare``: every method's explanation of the same adversarial examples.

One shared set (fooled IFGSM examples of the standard classifier at ``compare.eps``,
untargeted and targeted, and localized attacks) explained by saliency, guided
backprop, LIME, the LAN mask, the attribute boxes, InterpretGAN and the
attack-to-explain class perturbation; each map scored against where the perturbation
is, the attacked region and the changed evidence, and against the others, beside a
random map's exact expectation (:mod:`advinterp.comparison`).
"""

from __future__ import annotations

import logging

from advinterp.attacks.attack_to_explain import A2EParams, at_image_size
from advinterp.comparison.artifact import write_maps
from advinterp.comparison.examples import (
    SharedExamples,
    ifgsm_examples,
    localized_examples,
    require_examples,
)
from advinterp.comparison.figures import agreement_figure, maps_figure, scores_figure
from advinterp.comparison.maps import interpretgan_layer, read_sje
from advinterp.comparison.study import ComparisonModels, ComparisonSettings, compare_explanations
from advinterp.comparison.tables import comparison_markdown, comparison_metrics
from advinterp.config.a2e_explain import A2EExplainConfig
from advinterp.config.compare import CompareConfig
from advinterp.config.comparison import COMPARISON
from advinterp.config.distances import DistancesConfig
from advinterp.config.explain import ExplainConfig
from advinterp.config.ground import GroundConfig
from advinterp.data.artifact import load_dataset
from advinterp.detection.attribute_rcnn import load_detector
from advinterp.explainers.image_sets import lime_settings
from advinterp.explainers.interpretgan_training import load_igan_gans, load_igan_model
from advinterp.explainers.lan import load_lan
from advinterp.figures import save_figure
from advinterp.models.checkpoint import load_classifier
from advinterp.store import atomic_output, open_store, read_json, write_csv, write_json, write_text
from stages.stage import Keys, Stage, StageIO, figure, metrics, out, run, table

log = logging.getLogger("advinterp.stages.compare")

STAGE = Stage(
    name="compare",
    method=COMPARISON,
    desc="Every method's map of the same adversarial examples (IFGSM untargeted/targeted at "
    "one eps, localized attacks), scored against the perturbation, the attacked region and "
    "the changed attributes' part boxes, and against each other, beside a random map's "
    "exact expectation.",
    inputs={
        "dataset": "data/dataset.zarr",
        "attack": "artifacts/attack/adversarial.zarr",
        "localized": "artifacts/localized_attack/attacks.zarr",
        "model": "artifacts/train/model.pt",
        "sje": "artifacts/sje/sje.zarr",
        "detector": "artifacts/train_detector/detector.pt",
        "lan": "artifacts/lan_train/lan.pt",
        "igan": "artifacts/igan_train/models",
        "vulnerability": "artifacts/igan_vulnerability/metrics.json",
    },
    outputs={
        "maps": out("artifacts/compare/maps.zarr"),
        "metrics": metrics("artifacts/compare/metrics.json"),
        "summary": table("artifacts/compare/scores.csv"),
        "agreement": table("artifacts/compare/agreement.csv"),
        "markdown": table("artifacts/compare/comparison.md"),
        "figure_maps": figure("artifacts/compare/maps.png"),
        "figure_scores": figure("artifacts/compare/scores.png"),
        "figure_agreement": figure("artifacts/compare/agreement.png"),
    },
    configs=(
        CompareConfig,
        Keys(
            ExplainConfig,
            (
                "batch_size",
                "saliency",
                "lime_segmentation",
                "quickshift",
                "felzenszwalb",
                "lime_num_samples",
                "lime_batch_size",
                "lime_top",
            ),
        ),
        Keys(GroundConfig, ("top_k", "normalize", "attribute_thresh", "box_thresh")),
        Keys(DistancesConfig, ("fraction", "normalize")),
        Keys(A2EExplainConfig, ("attack", "num_samples", "reference_size")),
    ),
    base=("seed", "device", "num_threads", "chunk_size", "precision"),
)


def main(io: StageIO) -> None:
    cfg, seed, device = io.config(CompareConfig), io.base.seed, io.device
    explain, grounding = io.config(ExplainConfig), io.config(GroundConfig)
    distances, a2e = io.config(DistancesConfig), io.config(A2EExplainConfig)
    data = load_dataset(io.dataset)
    examples = require_examples(
        SharedExamples.concat(
            [
                ifgsm_examples(
                    open_store(io.attack),
                    data.images,
                    cfg.eps,
                    cfg.examples_per_mode,
                    seed,
                    str(io.attack),
                ),
                localized_examples(
                    open_store(io.localized),
                    data.images,
                    cfg.localized_examples,
                    seed,
                    str(io.localized),
                ),
            ]
        ),
        f"no fooled IFGSM example at eps {cfg.eps} in {io.attack} and no localized attack in "
        f"{io.localized}",
    )
    gans = load_igan_gans(io.igan, "natural", device)
    layer = interpretgan_layer(cfg.igan_layer, read_json(io.vulnerability), list(gans))
    models = ComparisonModels(
        classifier=load_classifier(io.model, device, num_classes=data.num_classes),
        sje=read_sje(open_store(io.sje), str(io.sje)),
        detector=load_detector(io.detector, device),
        lan=load_lan(io.lan, device),
        igan_model=load_igan_model(io.igan, "natural", device),
        igan_gan=gans[layer],
    )
    settings = ComparisonSettings(
        lime=lime_settings(explain, io.base.precision),  # as the explain stage runs it
        saliency=explain.saliency,
        batch_size=cfg.batch_size,
        top_k=grounding.top_k,
        normalize=grounding.normalize,
        attribute_thresh=grounding.attribute_thresh,
        box_thresh=grounding.box_thresh,
        evidence_fraction=distances.fraction,
        evidence_normalize=distances.normalize,
        a2e=at_image_size(A2EParams(**a2e.attack.model_dump()), examples.size, a2e.reference_size),
        a2e_samples=a2e.num_samples,
        top_fraction=cfg.top_fraction,
        seed=seed,
    )
    log.info("comparing %d examples (%s); InterpretGAN at %s", len(examples), cfg.eps, layer)
    result = compare_explanations(
        examples,
        models,
        settings,
        dataset=(data.images, data.index.labels, data.index.split),
        boxes=data.index.boxes,
        device=device,
        info={"eps": cfg.eps, "igan_layer": layer},
    )
    with atomic_output(io.maps) as tmp:
        write_maps(
            tmp, result, io.base.chunk_size, {"compare": cfg.model_dump(mode="json"), "seed": seed}
        )
    write_csv(io.summary, result.summary, float_format="%.6g")
    write_csv(io.agreement, result.agreement, float_format="%.6g")
    write_text(io.markdown, comparison_markdown(result))
    write_json(io.metrics, comparison_metrics(result))
    names = data.index.class_names
    save_figure(
        maps_figure(result, cfg.figure_examples, names, cfg.figure.dpi),
        io.figure_maps,
        cfg.figure.dpi,
    )
    save_figure(scores_figure(result.summary), io.figure_scores, cfg.figure.dpi)
    save_figure(
        agreement_figure(result.agreement, result.info["k"]), io.figure_agreement, cfg.figure.dpi
    )


if __name__ == "__main__":
    run(STAGE, main)
