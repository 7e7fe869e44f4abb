"""Bad input, stage by stage: one clear error line, exit code 2, nothing written.

Every case runs a stage's entry point in its own process, as ``python -m stages.<name>``
would (through the fork server of :mod:`tests.stages.stage_runner`, which imports torch
and friends once; one case runs a real ``python -m`` to show the two agree), with a
params file and inputs built here: the session's tiny world (tests/stages/stage_world.py:
every declared stage run on tiny params, each output at its declared path) and broken
copies of those (an array removed, labels out of range, NaN features, an empty split,
corrupt, unsafe or mismatched checkpoints). A case names what it breaks by the stage and
flag that write it (``MODEL`` = train's ``model``) and its stage receives the broken copy
on whichever input flag declares that path; the outputs go to a scratch directory.

Each case asserts what the pipeline promises (README, "What the pipeline guarantees"):
exit code 2, exactly one ``ERROR`` line naming the file or the dotted param, no
traceback, and no output (nor temporary sibling) in the output directory. Besides the
hand-written cases, every section each stage declares (``base``, configs, runtime) is
removed from the params once: the stage must refuse to run without it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import yaml
import zarr

from flows.generate import declarations, unit_argv
from stages.stage import render_unit
from tests.conftest import ROOT, deep_update
from tests.stages.stage_world import World, flag_argv, section_names


@pytest.fixture(scope="module")
def world(tiny_world: World) -> World:
    return tiny_world


# ---------------------------------------------------------------------------------------
# What the cases break, by the stage and flag that declare it.
Artifact = tuple[str, str]
DATASET: Artifact = ("dataset", "out")
MODEL: Artifact = ("train", "model")
ROBUST: Artifact = ("adv_train", "out")
ATTACK: Artifact = ("attack", "out")
ADV_FEATURES: Artifact = ("adv_features", "out")
SJE: Artifact = ("sje", "out")
LOCALIZED: Artifact = ("localized_attack", "out")
EXPLANATIONS: Artifact = ("explain", "out")
DETECTOR: Artifact = ("train_detector", "model")
DETECTIONS: Artifact = ("detect", "out")
LAN: Artifact = ("lan_train", "lan")
MASKS: Artifact = ("lan_train", "masks")
MASK_CLASSIFIER: Artifact = ("mask_classifier", "model")
ADVERSARIAL: Artifact = ("lan_attacks", "out")
IGAN_MODELS: Artifact = ("igan_train", "out")
SECOND_MODEL: Artifact = ("a2e_second", "out")
DVC_YAML: Artifact = ("report", "dvc_yaml")  # a source: the repository's file, copied in

# Ways to break an input: each returns (the artifact it stands in for, or None when the
# case passes it through params, and the broken copy made in the scratch dir).
Break = Callable[[World, Path], tuple[Artifact | None, Path]]


def _copy(src: Path, dst: Path) -> Path:
    if src.is_dir():
        shutil.copytree(src, dst)
    else:
        shutil.copy(src, dst)
    return dst


def drop(art: Artifact, array: str) -> Break:
    """A copy of a store with one array (or group) removed."""

    def make(world: World, tmp: Path) -> tuple[Artifact, Path]:
        src = world.path(*art)
        dst = _copy(src, tmp / f"no_{array.replace('/', '_')}_{src.name}")
        shutil.rmtree(dst / array)
        return art, dst

    return make


def rewrite(art: Artifact, array: str, fn: Callable[[np.ndarray], np.ndarray], tag: str) -> Break:
    """A copy of a store with ``array`` replaced by ``fn(array)`` (same shape and dtype)."""

    def make(world: World, tmp: Path) -> tuple[Artifact, Path]:
        src = world.path(*art)
        dst = _copy(src, tmp / f"{tag}_{src.name}")
        arr = zarr.open_group(str(dst), mode="r+")[array]
        with np.errstate(all="ignore"):
            arr[...] = fn(arr[...]).astype(arr.dtype)
        return art, dst

    return make


def missing(art: Artifact) -> Break:
    def make(world: World, tmp: Path) -> tuple[Artifact, Path]:
        return art, tmp / f"absent_{world.path(*art).name}"

    return make


def replaced_by(art: Artifact, other: Artifact) -> Break:
    """Another artifact given where ``art`` belongs (e.g. the dataset as masks)."""

    def make(world: World, tmp: Path) -> tuple[Artifact, Path]:
        src = world.path(*other)
        return art, _copy(src, tmp / f"a_{other[0]}_{src.name}")

    return make


def nan_row(a: np.ndarray) -> np.ndarray:
    """``a`` with its 4th row set to NaN."""
    a = a.astype(np.float64)
    a[3] = np.nan
    return a


def inf_above_mean(a: np.ndarray) -> np.ndarray:
    return np.where(a > a.mean(), np.inf, a)


class _Payload:
    """Unpickling this runs a shell command: what a malicious checkpoint carries."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def checkpoint(kind: str, given_as: Artifact | None = MODEL) -> Break:
    """A bad weights file, made from the world's classifier, given where ``given_as``
    belongs (None: the case names it in params): ``corrupt`` bytes, ``truncated``,
    ``pickled`` code (a payload that would touch a marker file), ``wrong_arch`` (weights
    of another architecture than the file claims), ``torchvision_state_dict`` (a
    torchvision shufflenet's), ``other_classes`` (a valid classifier for another class
    count)."""

    def make(world: World, tmp: Path) -> tuple[Artifact | None, Path]:
        path = tmp / f"{kind}.pt"
        model = world.path(*MODEL)
        if kind == "corrupt":
            path.write_bytes(b"this is not a checkpoint\n" * 10)
        elif kind == "truncated":
            good = model.read_bytes()
            path.write_bytes(good[: len(good) // 2])
        elif kind == "pickled":
            obj = torch.load(model, weights_only=True)
            obj["metadata"] = {"note": _Payload(tmp / "PWNED")}
            torch.save(obj, path)
        elif kind == "wrong_arch":
            obj = torch.load(model, weights_only=True)
            obj["arch"] = "shufflenet_v2_x0_5"
            torch.save(obj, path)
        elif kind == "torchvision_state_dict":
            from advinterp.models.classifier import build_backbone

            torch.save(build_backbone("shufflenet_v2_x0_5").state_dict(), path)
        elif kind == "other_classes":
            from advinterp.models.checkpoint import load_classifier, save_classifier
            from advinterp.models.classifier import build_classifier

            m = load_classifier(model)
            other = build_classifier(m.arch, m.num_classes + 3, m.mean.flatten(), m.std.flatten())
            save_classifier(path, other)
        else:
            raise ValueError(kind)
        return given_as, path

    return make


@dataclass
class Case:
    stage: str
    name: str
    expect: tuple[str, ...]  # substrings of the one error line; {tmp} = the first broken input
    params: dict[str, Any] = field(default_factory=dict)
    breaks: tuple[Break, ...] = ()
    raw_params: str | None = None  # the params file's text instead of valid YAML
    without: tuple[str, ...] = ()  # params sections removed

    @property
    def id(self) -> str:
        return f"{self.stage}-{self.name}"


def p(section: str, **values: Any) -> dict[str, Any]:
    """Params overrides for one section; ``{tmp}`` in a value = the case's scratch dir."""
    return {section: values}


NO_TEST = rewrite(DATASET, "split", lambda a: np.where(a == 2, 0, a), "notest")
BAD_LABELS = rewrite(DATASET, "labels", lambda a: a + 7, "badlabels")

CASES = [
    # --- dataset -------------------------------------------------------------------
    Case("dataset", "image_size_too_small", ("dataset.image_size",), p("dataset", image_size=4)),
    Case(
        "dataset", "unknown_source", ("dataset.source", "imagenet"), p("dataset", source="imagenet")
    ),
    Case("dataset", "negative_seed", ("base.seed",), p("base", seed=-1)),
    Case("dataset", "bad_device", ("base.device",), p("base", device="tpu")),
    Case(
        "dataset",
        "root_missing",
        ("dataset.root", "/nonexistent/CUB_200_2011"),
        p("dataset", source="cub", root="/nonexistent/CUB_200_2011"),
    ),
    Case("dataset", "no_test_split", ("dataset.test_fraction",), p("dataset", test_fraction=0.0)),
    Case("dataset", "unknown_key", ("dataset.colour",), p("dataset", colour="red")),
    Case("dataset", "params_not_yaml", ("params.yaml", "not valid YAML"), raw_params="base: [1,\n"),
    # --- train ---------------------------------------------------------------------
    Case("train", "zero_epochs", ("train.epochs",), p("train", epochs=0)),
    Case("train", "negative_lr", ("train.optimizer.lr",), p("train", optimizer={"lr": -0.1})),
    Case("train", "unknown_arch", ("train.arch", "resnet9000"), p("train", arch="resnet9000")),
    Case(
        "train",
        "unknown_optimizer",
        ("train.optimizer.name", "lbfgs"),
        p("train", optimizer={"name": "lbfgs"}),
    ),
    Case("train", "missing_dataset", ("{tmp}",), breaks=(missing(DATASET),)),
    Case("train", "dataset_without_labels", ("{tmp}", "labels"), breaks=(drop(DATASET, "labels"),)),
    Case("train", "labels_out_of_range", ("{tmp}", "labels"), breaks=(BAD_LABELS,)),
    Case("train", "empty_test_split", ("{tmp}", "test split is empty"), breaks=(NO_TEST,)),
    Case(
        "train",
        "nan_class_attributes",
        ("{tmp}", "NaN"),
        breaks=(rewrite(DATASET, "class_attributes", lambda a: a * np.nan, "nanatt"),),
    ),
    Case(
        "train",
        "weights_missing",
        ("train.weights", "none.pt", "not found"),
        p("train", weights="{tmp}/none.pt"),
    ),
    Case(
        "train",
        "weights_corrupt",
        ("train.weights", "corrupt.pt"),
        p("train", weights="{tmp}/corrupt.pt"),
        (checkpoint("corrupt", None),),
    ),
    Case(
        "train",
        "weights_truncated",
        ("truncated.pt",),
        p("train", weights="{tmp}/truncated.pt"),
        (checkpoint("truncated", None),),
    ),
    Case(
        "train",
        "weights_pickled_code",
        ("pickled.pt", "refused"),
        p("train", weights="{tmp}/pickled.pt"),
        (checkpoint("pickled", None),),
    ),
    Case(
        "train",
        "weights_wrong_arch",
        ("torchvision_state_dict.pt", "architecture"),
        p("train", weights="{tmp}/torchvision_state_dict.pt"),
        (checkpoint("torchvision_state_dict", None),),
    ),
    # --- features ------------------------------------------------------------------
    Case("features", "zero_batch", ("features.batch_size",), p("features", batch_size=0)),
    Case("features", "unknown_executor", ("scale.executor",), p("scale", executor="spark")),
    Case("features", "zero_workers", ("scale.workers",), p("scale", workers=0)),
    Case("features", "missing_images", ("{tmp}",), breaks=(missing(DATASET),)),
    Case(
        "features", "store_without_images", ("{tmp}", "images"), breaks=(drop(DATASET, "images"),)
    ),
    Case("features", "model_missing", ("{tmp}", "not found"), breaks=(missing(MODEL),)),
    Case("features", "model_corrupt", ("corrupt.pt",), breaks=(checkpoint("corrupt"),)),
    Case(
        "features", "model_pickled_code", ("pickled.pt", "refused"), breaks=(checkpoint("pickled"),)
    ),
    Case("features", "model_wrong_arch", ("wrong_arch.pt",), breaks=(checkpoint("wrong_arch"),)),
    # --- adv_train -----------------------------------------------------------------
    Case("adv_train", "eps_above_one", ("adv_train.eps",), p("adv_train", eps=[1.5])),
    Case("adv_train", "negative_eps", ("adv_train.eps",), p("adv_train", eps=[-0.03])),
    Case("adv_train", "zero_steps", ("adv_train.steps",), p("adv_train", steps=0)),
    Case("adv_train", "alpha_out_of_range", ("adv_train.alpha",), p("adv_train", alpha=1.5)),
    Case("adv_train", "missing_dataset", ("{tmp}",), breaks=(missing(DATASET),)),
    Case(
        "adv_train",
        "negative_labels",
        ("{tmp}", "labels"),
        breaks=(rewrite(DATASET, "labels", lambda a: -1 - a, "neglabels"),),
    ),
    Case("adv_train", "model_corrupt", ("corrupt.pt",), breaks=(checkpoint("corrupt"),)),
    Case(
        "adv_train",
        "model_of_other_classes",
        ("other_classes.pt", "classes"),
        breaks=(checkpoint("other_classes"),),
    ),
    # --- attack --------------------------------------------------------------------
    Case("attack", "negative_eps", ("attack.eps",), p("attack", eps=[-0.01, 0.02])),
    Case("attack", "eps_above_one", ("attack.eps",), p("attack", eps=[0.02, 1.5])),
    Case("attack", "zero_steps", ("attack.steps",), p("attack", steps=0)),
    Case("attack", "zero_step_size", ("attack.step_size",), p("attack", step_size=0.0)),
    Case("attack", "missing_dataset", ("{tmp}",), breaks=(missing(DATASET),)),
    Case("attack", "missing_robust_dir", ("{tmp}",), breaks=(missing(ROBUST),)),
    Case(
        "attack",
        "empty_test_split",
        ("{tmp}", "test split is empty"),
        breaks=(rewrite(DATASET, "split", lambda a: np.where(a == 2, 1, a), "notest"),),
    ),
    Case(
        "attack", "model_pickled_code", ("pickled.pt", "refused"), breaks=(checkpoint("pickled"),)
    ),
    Case(
        "attack",
        "model_of_other_classes",
        ("other_classes.pt", "classes"),
        breaks=(checkpoint("other_classes"),),
    ),
    # --- adv_features --------------------------------------------------------------
    Case("adv_features", "zero_batch", ("features.batch_size",), p("features", batch_size=0)),
    Case("adv_features", "missing_attack", ("{tmp}",), breaks=(missing(ATTACK),)),
    Case(
        "adv_features",
        "attack_without_images",
        ("{tmp}", "standard/targeted/eps_0.06/images"),
        breaks=(drop(ATTACK, "standard/targeted/eps_0.06/images"),),
    ),
    Case("adv_features", "model_truncated", ("truncated.pt",), breaks=(checkpoint("truncated"),)),
    # --- sje -----------------------------------------------------------------------
    Case("sje", "zero_lr", ("sje.lr",), p("sje", lr=0.0)),
    Case("sje", "unknown_feature_norm", ("sje.feature_norm",), p("sje", feature_norm="l3")),
    Case("sje", "zero_epochs", ("sje.epochs",), p("sje", epochs=0)),
    Case("sje", "missing_features", ("{tmp}",), breaks=(missing(ADV_FEATURES),)),
    Case(
        "sje",
        "features_without_clean",
        ("{tmp}", "standard/clean/features"),
        breaks=(drop(ADV_FEATURES, "standard/clean/features"),),
    ),
    Case(
        "sje",
        "nan_features",
        ("{tmp}", "standard/clean/features", "NaN"),
        breaks=(rewrite(ADV_FEATURES, "standard/clean/features", nan_row, "nanfeat"),),
    ),
    Case(
        "sje",
        "inf_adversarial_features",
        ("{tmp}", "at_0.06/targeted/eps_0.06/features", "NaN or inf"),
        breaks=(
            rewrite(ADV_FEATURES, "at_0.06/targeted/eps_0.06/features", inf_above_mean, "inffeat"),
        ),
    ),
    Case(
        "sje",
        "inf_class_attributes",
        ("{tmp}", "NaN or inf"),
        breaks=(rewrite(DATASET, "class_attributes", lambda a: a / (a > 0.5), "infatt"),),
    ),
    Case(
        "sje",
        "empty_train_split",
        ("{tmp}", "train split is empty"),
        breaks=(rewrite(DATASET, "split", lambda a: np.where(a == 0, 1, a), "notrain"),),
    ),
    # --- accuracy ------------------------------------------------------------------
    Case("accuracy", "zero_dpi", ("accuracy.figure.dpi",), p("accuracy", figure={"dpi": 0})),
    Case("accuracy", "missing_sje", ("{tmp}",), breaks=(missing(SJE),)),
    Case(
        "accuracy",
        "sje_without_predictions",
        ("{tmp}", "standard/clean/pred"),
        breaks=(drop(SJE, "standard/clean/pred"),),
    ),
    Case(
        "accuracy",
        "features_without_logits",
        ("{tmp}", "at_0.06/untargeted/eps_0.06/logits"),
        breaks=(drop(ADV_FEATURES, "at_0.06/untargeted/eps_0.06/logits"),),
    ),
    Case(
        "accuracy",
        "nan_logits",
        ("{tmp}", "NaN"),
        breaks=(
            rewrite(ADV_FEATURES, "standard/untargeted/eps_0.06/logits", nan_row, "nanlogits"),
        ),
    ),
    # --- localized_attack ----------------------------------------------------------
    Case(
        "localized_attack",
        "eps_above_one",
        ("localized_attack.eps",),
        p("localized_attack", eps=1.5),
    ),
    Case(
        "localized_attack",
        "zero_steps",
        ("localized_attack.max_steps",),
        p("localized_attack", max_steps=0),
    ),
    Case(
        "localized_attack",
        "target_not_a_class",
        ("localized_attack.target",),
        p("localized_attack", target=99),
    ),
    Case("localized_attack", "missing_dataset", ("{tmp}",), breaks=(missing(DATASET),)),
    Case("localized_attack", "labels_out_of_range", ("{tmp}", "labels"), breaks=(BAD_LABELS,)),
    Case(
        "localized_attack",
        "model_of_other_classes",
        ("other_classes.pt", "classes"),
        breaks=(checkpoint("other_classes"),),
    ),
    # --- explain -------------------------------------------------------------------
    Case(
        "explain",
        "one_lime_sample",
        ("explain.lime_num_samples",),
        p("explain", lime_num_samples=1),
    ),
    Case(
        "explain",
        "unknown_segmentation",
        ("explain.lime_segmentation",),
        p("explain", lime_segmentation="slic"),
    ),
    Case(
        "explain",
        "unknown_attack_mode",
        ("explain.ifgsm_mode",),
        p("explain", ifgsm_mode="sideways"),
    ),
    Case("explain", "eps_not_attacked", ("explain.ifgsm_eps",), p("explain", ifgsm_eps=0.03)),
    Case("explain", "missing_localized", ("{tmp}",), breaks=(missing(LOCALIZED),)),
    Case(
        "explain",
        "localized_without_regions",
        ("{tmp}", "region"),
        breaks=(drop(LOCALIZED, "region"),),
    ),
    Case("explain", "model_corrupt", ("corrupt.pt",), breaks=(checkpoint("corrupt"),)),
    # --- explain_eval --------------------------------------------------------------
    Case(
        "explain_eval",
        "zero_superpixels",
        ("explain_eval.max_superpixels",),
        p("explain_eval", max_superpixels=0),
    ),
    Case(
        "explain_eval",
        "more_superpixels_than_kept",
        ("explain_eval.max_superpixels", "explain.lime_top"),
        p("explain_eval", max_superpixels=50),
    ),
    Case("explain_eval", "missing_explanations", ("{tmp}",), breaks=(missing(EXPLANATIONS),)),
    Case(
        "explain_eval",
        "explanations_without_lime",
        ("{tmp}", "localized/lime_top"),
        breaks=(drop(EXPLANATIONS, "localized/lime_top"),),
    ),
    Case(
        "explain_eval",
        "nan_saliency",
        ("{tmp}", "localized/saliency", "NaN"),
        breaks=(rewrite(EXPLANATIONS, "localized/saliency", nan_row, "nansal"),),
    ),
    # --- train_detector ------------------------------------------------------------
    Case(
        "train_detector",
        "unknown_backbone",
        ("train_detector.model.backbone",),
        p("train_detector", model={"backbone": "vgg16"}),
    ),
    Case(
        "train_detector",
        "zero_epochs_without_weights",
        ("train_detector", "weights"),
        p("train_detector", epochs=0),
    ),
    Case(
        "train_detector",
        "iou_above_one",
        ("train_detector.iou_thresh",),
        p("train_detector", iou_thresh=1.5),
    ),
    Case("train_detector", "missing_dataset", ("{tmp}",), breaks=(missing(DATASET),)),
    Case(
        "train_detector",
        "dataset_without_boxes",
        ("{tmp}", "part boxes"),
        breaks=(drop(DATASET, "box_offsets"),),
    ),
    Case(
        "train_detector",
        "dataset_with_half_boxes",
        ("{tmp}", "box_xyxy"),
        breaks=(drop(DATASET, "box_xyxy"),),
    ),
    Case(
        "train_detector",
        "weights_missing",
        ("none.pt", "not found"),
        p("train_detector", weights="{tmp}/none.pt"),
    ),
    Case(
        "train_detector",
        "weights_pickled_code",
        ("pickled.pt", "refused"),
        p("train_detector", weights="{tmp}/pickled.pt"),
        (checkpoint("pickled", None),),
    ),
    Case(
        "train_detector",
        "weights_of_a_classifier",
        ("model.pt", "detector"),
        p("train_detector", weights="{tmp}/model.pt"),
        (lambda w, t: (None, _copy(w.path(*MODEL), t / "model.pt")),),
    ),
    # --- detect --------------------------------------------------------------------
    Case("detect", "eps_above_one", ("detect.eps",), p("detect", eps=2.0)),
    Case("detect", "eps_not_attacked", ("detect.eps",), p("detect", eps=0.03)),
    Case("detect", "unknown_at_model", ("detect.at_model",), p("detect", at_model="at_0.5")),
    Case("detect", "missing_detector", ("{tmp}", "not found"), breaks=(missing(DETECTOR),)),
    Case("detect", "detector_corrupt", ("corrupt.pt",), breaks=(checkpoint("corrupt", DETECTOR),)),
    Case(
        "detect",
        "classifier_as_detector",
        ("{tmp}", "detector"),
        breaks=(replaced_by(DETECTOR, MODEL),),
    ),
    Case(
        "detect",
        "attack_without_images",
        ("{tmp}", "at_0.06/targeted/eps_0.06/images"),
        breaks=(drop(ATTACK, "at_0.06/targeted/eps_0.06/images"),),
    ),
    # --- ground --------------------------------------------------------------------
    Case("ground", "top_k_above_attributes", ("ground.top_k",), p("ground", top_k=1000)),
    Case("ground", "unknown_classifier", ("ground.classifier",), p("ground", classifier="knn")),
    Case("ground", "zero_top_k", ("ground.top_k",), p("ground", top_k=0)),
    Case("ground", "missing_detections", ("{tmp}",), breaks=(missing(DETECTIONS),)),
    Case(
        "ground",
        "detections_without_clean",
        ("{tmp}", "clean"),
        breaks=(drop(DETECTIONS, "clean"),),
    ),
    Case(
        "ground",
        "sje_without_at_attributes",
        ("{tmp}", "at_0.06/untargeted/eps_0.06/attributes"),
        breaks=(drop(SJE, "at_0.06/untargeted/eps_0.06/attributes"),),
    ),
    Case(
        "ground",
        "nan_attributes",
        ("{tmp}", "NaN"),
        breaks=(rewrite(SJE, "standard/targeted/eps_0.06/attributes", nan_row, "nanattr"),),
    ),
    # --- distances -----------------------------------------------------------------
    Case("distances", "eps_not_attacked", ("distances.eps",), p("distances", eps=0.03)),
    Case("distances", "zero_fraction", ("distances.fraction",), p("distances", fraction=0.0)),
    Case("distances", "one_bin", ("distances.bins",), p("distances", bins=1)),
    Case("distances", "unknown_scope", ("distances.scope",), p("distances", scope="local")),
    Case("distances", "missing_sje", ("{tmp}",), breaks=(missing(SJE),)),
    Case(
        "distances",
        "sje_without_targeted_attributes",
        ("{tmp}", "at_0.06/targeted/eps_0.06/attributes"),
        breaks=(drop(SJE, "at_0.06/targeted/eps_0.06/attributes"),),
    ),
    Case(
        "distances",
        "nan_attributes",
        ("{tmp}", "NaN"),
        breaks=(rewrite(SJE, "at_0.06/targeted/eps_0.06/attributes", nan_row, "nanattr"),),
    ),
    # --- report --------------------------------------------------------------------
    Case("report", "missing_dvc_yaml", ("{tmp}",), breaks=(missing(DVC_YAML),)),
    Case(
        "report",
        "dvc_yaml_not_yaml",
        ("{tmp}",),
        breaks=(lambda w, t: (DVC_YAML, _write(t / "dvc.yaml", "stages: [unclosed\n")),),
    ),
    # --- the LAN stages (Nguyen et al.) --------------------------------------------
    Case("lan_train", "zero_beta", ("lan_train.beta",), p("lan_train", beta=0.0)),
    Case("lan_train", "unknown_noise", ("lan_train.noise",), p("lan_train", noise="pink")),
    Case("lan_train", "missing_dataset", ("{tmp}",), breaks=(missing(DATASET),)),
    Case("lan_train", "empty_test_split", ("{tmp}", "test split is empty"), breaks=(NO_TEST,)),
    Case(
        "lan_train",
        "model_of_other_classes",
        ("other_classes.pt", "classes"),
        breaks=(checkpoint("other_classes"),),
    ),
    Case(
        "mask_classifier",
        "zero_epochs",
        ("mask_classifier.epochs",),
        p("mask_classifier", epochs=0),
    ),
    Case(
        "mask_classifier",
        "dropout_one",
        ("mask_classifier.dropout",),
        p("mask_classifier", dropout=1.0),
    ),
    Case("mask_classifier", "missing_masks", ("{tmp}",), breaks=(missing(MASKS),)),
    Case(
        "mask_classifier",
        "dataset_given_as_masks",
        ("{tmp}", "masks"),
        breaks=(replaced_by(MASKS, DATASET),),
    ),
    Case("mask_classifier", "labels_out_of_range", ("{tmp}", "labels"), breaks=(BAD_LABELS,)),
    Case(
        "lan_attacks",
        "fgsm_eps_above_one",
        ("lan_attacks.fgsm.eps",),
        p("lan_attacks", fgsm={"eps": 1.5}),
    ),
    Case(
        "lan_attacks",
        "negative_fgsm_eps",
        ("lan_attacks.fgsm.eps",),
        p("lan_attacks", fgsm={"eps": -0.1}),
    ),
    Case(
        "lan_attacks", "zero_cw_steps", ("lan_attacks.cw.steps",), p("lan_attacks", cw={"steps": 0})
    ),
    Case(
        "lan_attacks",
        "unknown_transfer_arch",
        ("lan_attacks.transfer.arch", "resnet9000"),
        p("lan_attacks", transfer={"arch": "resnet9000"}),
    ),
    Case("lan_attacks", "missing_dataset", ("{tmp}",), breaks=(missing(DATASET),)),
    Case(
        "lan_attacks",
        "model_of_other_classes",
        ("other_classes.pt", "classes"),
        breaks=(checkpoint("other_classes"),),
    ),
    Case("lan_detect", "zero_batch", ("lan_detect.batch_size",), p("lan_detect", batch_size=0)),
    Case("lan_detect", "missing_lan", ("{tmp}", "not found"), breaks=(missing(LAN),)),
    Case("lan_detect", "lan_corrupt", ("corrupt.pt",), breaks=(checkpoint("corrupt", LAN),)),
    Case(
        "lan_detect",
        "classifier_as_lan",
        ("{tmp}",),
        breaks=(replaced_by(LAN, MODEL),),
    ),
    Case(
        "lan_detect",
        "mask_classifier_pickled_code",
        ("pickled.pt", "refused"),
        breaks=(checkpoint("pickled", MASK_CLASSIFIER),),
    ),
    Case("lan_detect", "missing_adversarial", ("{tmp}",), breaks=(missing(ADVERSARIAL),)),
    # --- attack to explain (Jalwana et al.) -----------------------------------------
    Case("a2e_second", "zero_epochs", ("a2e_second.epochs",), p("a2e_second", epochs=0)),
    Case(
        "a2e_second",
        "unknown_arch",
        ("a2e_second.arch", "resnet9000"),
        p("a2e_second", arch="resnet9000"),
    ),
    Case(
        "a2e_second",
        "negative_lr",
        ("a2e_second.optimizer.lr",),
        p("a2e_second", optimizer={"lr": -0.1}),
    ),
    Case("a2e_second", "missing_dataset", ("{tmp}",), breaks=(missing(DATASET),)),
    Case(
        "a2e_second",
        "model_of_other_classes",
        ("other_classes.pt", "classes"),
        breaks=(checkpoint("other_classes"),),
    ),
    Case(
        "a2e_explain",
        "target_not_a_class",
        ("a2e_explain.targets",),
        p("a2e_explain", targets=[99]),
    ),
    Case(
        "a2e_explain",
        "one_seed",
        ("a2e_explain.seeds_per_target",),
        p("a2e_explain", seeds_per_target=1),
    ),
    Case(
        "a2e_explain",
        "gamma_above_one",
        ("a2e_explain.attack.gamma",),
        p("a2e_explain", attack={"eta": 8.0, "gamma": 1.5}),
    ),
    Case("a2e_explain", "missing_dataset", ("{tmp}",), breaks=(missing(DATASET),)),
    Case(
        "a2e_explain",
        "second_model_corrupt",
        ("corrupt.pt",),
        breaks=(checkpoint("corrupt", SECOND_MODEL),),
    ),
    Case(
        "a2e_explain",
        "model_of_other_classes",
        ("other_classes.pt", "classes"),
        breaks=(checkpoint("other_classes"),),
    ),
    Case(
        "a2e_robust",
        "downsample_not_dividing",
        ("a2e_robust.downsample",),
        p("a2e_robust", downsample=5),
    ),
    Case(
        "a2e_robust", "target_not_a_class", ("a2e_robust.targets",), p("a2e_robust", targets=[99])
    ),
    Case("a2e_robust", "missing_robust_dir", ("{tmp}",), breaks=(missing(ROBUST),)),
    Case(
        "a2e_robust",
        "second_model_pickled_code",
        ("pickled.pt", "refused"),
        breaks=(checkpoint("pickled", SECOND_MODEL),),
    ),
    Case("a2e_robust", "model_corrupt", ("corrupt.pt",), breaks=(checkpoint("corrupt"),)),
    Case(  # the robust model's parent (a copy of it) given as the independent judge
        "a2e_robust",
        "judge_is_the_robust_models_parent",
        ("a_train_model.pt", "took part in producing the robust model"),
        breaks=(replaced_by(SECOND_MODEL, MODEL),),
    ),
    # --- InterpretGAN and the pooling study (Zheng et al.) ----------------------------
    Case(
        "igan_train",
        "unknown_layer",
        ("igan_train.gan.layers",),
        p("igan_train", gan={"layers": ["conv9"]}),
    ),
    Case(
        "igan_train",
        "eps_above_one",
        ("igan_train.adversarial.eps",),
        p("igan_train", adversarial={"eps": 2.0}),
    ),
    Case("igan_train", "missing_dataset", ("{tmp}",), breaks=(missing(DATASET),)),
    Case("igan_train", "labels_out_of_range", ("{tmp}", "labels"), breaks=(BAD_LABELS,)),
    Case("igan_explain", "zero_steps", ("igan_explain.steps",), p("igan_explain", steps=0)),
    Case("igan_explain", "missing_models", ("{tmp}", "not found"), breaks=(missing(IGAN_MODELS),)),
    Case(
        "igan_vulnerability",
        "negative_eps",
        ("igan_vulnerability.eps",),
        p("igan_vulnerability", eps=-0.1),
    ),
    Case(
        "igan_vulnerability",
        "missing_models",
        ("{tmp}", "not found"),
        breaks=(missing(IGAN_MODELS),),
    ),
    Case(
        "pooling_study",
        "zero_pgd_steps",
        ("pooling_study", "pgd_steps"),
        p("pooling_study", pgd_steps=[0, 40]),
    ),
    Case("pooling_study", "eps_above_one", ("pooling_study.eps",), p("pooling_study", eps=1.5)),
    Case("pooling_study", "missing_models", ("{tmp}", "not found"), breaks=(missing(IGAN_MODELS),)),
]


def _json(art: Artifact, text: str, name: str) -> Break:
    """A JSON file with ``text`` where ``art`` belongs."""

    def make(world: World, tmp: Path) -> tuple[Artifact, Path]:
        return art, _write(tmp / name, text)

    return make


FINDINGS_CASES = [
    Case("lime_study", "zero_images", ("lime_study.num_images",), p("lime_study", num_images=0)),
    Case(
        "lime_study",
        "unknown_segmentation",
        ("lime_study.segmentations",),
        p("lime_study", segmentations=["slic"]),
    ),
    Case(
        "lime_study",
        "missing_localized_attacks",
        ("{tmp}", "not found"),
        breaks=(missing(LOCALIZED),),
    ),
    Case(
        "findings",
        "missing_digits_run",
        ("{tmp}", "not found"),
        breaks=(missing(("findings", "digits_lan_detect")),),
    ),
    Case(
        "findings",
        "metrics_without_the_claimed_number",
        ("{tmp}", "no number for the claim"),
        breaks=(_json(("findings", "accuracy"), '{"n": 3}', "accuracy.json"),),
    ),
    Case(
        "findings",
        "metrics_not_json",
        ("{tmp}", "not valid JSON"),
        breaks=(_json(("findings", "explain_eval"), "{oops", "explain_eval.json"),),
    ),
    Case(
        "report",
        "missing_findings",
        ("{tmp}", "not found"),
        breaks=(missing(("report", "findings")),),
    ),
]


def section_cases() -> list[Case]:
    """Every section each declared stage reads, removed once: the error names it."""
    return [
        Case(
            s.name,
            f"no_{name}_section",
            ("params.yaml", f"section '{name}' is missing"),
            without=(name,),
        )
        for s in declarations()
        for name in section_names(s)
    ]


COMPARE_CASES = [
    Case("compare", "eps_not_attacked", ("compare.eps", "attack.eps"), p("compare", eps=0.5)),
    Case("compare", "zero_top_fraction", ("compare.top_fraction",), p("compare", top_fraction=0)),
    Case(
        "compare",
        "unknown_igan_layer",
        ("compare.igan_layer", "fc9"),
        p("compare", igan_layer="fc9"),
    ),
    Case(
        "compare",
        "vulnerability_without_layers",
        ("compare.igan_layer=auto", "no Vul_i"),
        breaks=(_json(("compare", "vulnerability"), '{"natural": {}}', "vul.json"),),
    ),
    Case(
        "compare",
        "missing_vulnerability",
        ("{tmp}", "not found"),
        breaks=(missing(("compare", "vulnerability")),),
    ),
    Case("compare", "missing_lan", ("{tmp}", "not found"), breaks=(missing(LAN),)),
    Case("compare", "sje_without_W", ("{tmp}", "standard/W"), breaks=(drop(SJE, "standard/W"),)),
    Case(
        "compare",
        "localized_without_region",
        ("{tmp}", "region"),
        breaks=(drop(LOCALIZED, "region"),),
    ),
    Case(
        "report",
        "missing_comparison",
        ("{tmp}", "not found"),
        breaks=(missing(("report", "comparison")),),
    ),
]

VALIDATE_CASES = [
    Case(
        "validate",
        "target_beyond_the_classes",
        ("a2e_explain.targets[0]", "class 99 does not exist", "4 classes"),
        p("a2e_explain", targets=[99]),
    ),
    Case(
        "validate",
        "every_problem_in_one_line",
        ("localized_attack.target", "no class is named 'owl'", "detect.eps: 0.5", "ground.top_k"),
        {
            "localized_attack": {"target": "owl"},
            "detect": {"eps": 0.5},
            "ground": {"top_k": 1000},
        },
    ),
    Case(
        "validate",
        "draw_more_than_the_classes",
        ("a2e_robust.targets", "draw 9 classes of a dataset with 4"),
        p("a2e_robust", targets={"draw": 9}),
    ),
    Case(
        "validate",
        "at_model_not_trained",
        ("distances.at_model", "at_0.5"),
        p("distances", at_model="at_0.5"),
    ),
    Case(
        "validate",
        "root_missing",
        ("dataset.root", "/nonexistent/CUB_200_2011"),
        p("dataset", source="cub", root="/nonexistent/CUB_200_2011"),
    ),
    Case(
        "dataset",
        "changed_since_validated",
        ("{tmp}", "class_names", "changed since the validate stage"),
        breaks=(
            _json(
                ("dataset", "validated"),
                '{"source": "synthetic", "class_names": ["a", "b"], "attribute_names": [], '
                '"image_size": 32, "images": 40}',
                "dataset.json",
            ),
        ),
    ),
]

CASES += FINDINGS_CASES + COMPARE_CASES + VALIDATE_CASES
ALL_CASES = CASES + section_cases()


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def _error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if " ERROR " in line or line.startswith("ERROR")]


def _left_in(path: Path) -> list[Path]:
    return sorted(path.rglob("*")) if path.exists() else []


def prepare(world: World, case: Case, tmp: Path) -> tuple[list[str], list[Path]]:
    """Broken inputs and params of ``case`` in ``tmp``; returns (argv, broken paths).

    The stage gets the world's file for each input and source it declares, or the broken
    copy where a break stands in for it, and writes each output to ``tmp/out/<flag>``.
    """
    stage = world.stage(case.stage)
    broken = tmp / "in"
    broken.mkdir()
    out = tmp / "out"
    out.mkdir()
    replaced: dict[Path, Path] = {}
    made = []
    for make in case.breaks:
        art, path = make(world, broken)
        if art is not None:
            replaced[world.path(*art)] = path
        made.append(path)
    paths: dict[str, Path] = {}
    for flag in [*stage.inputs, *stage.sources]:
        paths[flag] = replaced.pop(world.path(stage.name, flag), world.path(stage.name, flag))
    assert not replaced, f"{case.id}: {case.stage} reads none of {sorted(map(str, replaced))}"
    for flag, o in stage.outputs.items():
        paths[flag] = out / (flag + Path(o.path).suffix)
    overrides = yaml.safe_load(yaml.safe_dump(case.params).replace("{tmp}", str(broken)))
    params = deep_update(world.params, overrides)
    for name in case.without:
        del params[name]
    params_file = tmp / "params.yaml"
    params_file.write_text(
        case.raw_params if case.raw_params is not None else yaml.safe_dump(params, sort_keys=False)
    )
    unit = []
    if stage.unit is not None:  # one run of a unit stage: the world's first value
        value = world.params[stage.unit.model.section][stage.unit.key][0]
        unit = unit_argv(stage, render_unit(value))
    return ["--params", str(params_file), *unit, *flag_argv(stage, paths)], made


def check_outcome(case: Case, tmp: Path, made: list[Path], code: int, stderr: str) -> str:
    """Exit 2, one error line (the last) naming what is wrong, no traceback, nothing in
    the output directory, no payload executed. Returns the error line."""
    assert "Traceback" not in stderr, stderr
    assert code == 2, f"exit {code}:\n{stderr}"
    errors = _error_lines(stderr)
    assert len(errors) == 1, stderr
    assert stderr.strip().splitlines()[-1] == errors[0], "the error must be one line, the last"
    fmt = {"tmp": str(made[0]) if made else str(tmp / "in")}
    for want in case.expect:
        assert want.format(**fmt) in errors[0], errors[0]
    out = tmp / "out"
    assert _left_in(out) == [], f"left behind: {_left_in(out)}"
    assert not (tmp / "in" / "PWNED").exists(), "a checkpoint ran code"
    return errors[0]


def test_every_declared_stage_has_cases():
    """A new stage gets bad-input cases of its own, beyond the generated missing sections."""
    covered = {c.stage for c in CASES}
    assert [s.name for s in declarations() if s.name not in covered] == []


@pytest.mark.parametrize("case", ALL_CASES, ids=lambda c: c.id)
def test_bad_input_gives_one_clear_error_and_no_output(world, case, tmp_path):
    argv, made = prepare(world, case, tmp_path)
    code, _, stderr = world.runner.run(case.stage, argv, tmp_path)
    check_outcome(case, tmp_path, made, code, stderr)


@pytest.mark.parametrize("case_id", ["attack-negative_eps", "features-model_pickled_code"])
def test_a_real_python_m_run_behaves_the_same(world, case_id, tmp_path):
    """The fork server is faithful: ``python -m stages.<name>`` gives the same result."""
    case = next(c for c in CASES if c.id == case_id)
    argv, made = prepare(world, case, tmp_path)
    proc = subprocess.run(
        [sys.executable, "-m", f"stages.{case.stage}", *argv],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
    )
    real = check_outcome(case, tmp_path, made, proc.returncode, proc.stderr)
    code, _, stderr = world.runner.run(case.stage, argv, tmp_path)
    forked = check_outcome(case, tmp_path, made, code, stderr)
    assert real.split(" ERROR ", 1)[1] == forked.split(" ERROR ", 1)[1]
