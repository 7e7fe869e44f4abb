"""Bad input, stage by stage: one clear error line, exit code 2, nothing written.

Every case runs a stage's entry point in its own process, as ``python -m stages.<name>``
would (through the fork server of :mod:`tests.stages.stage_runner`, which imports torch
and friends once; one case runs a real ``python -m`` to show the two agree), with a
params file and inputs built here: the session's tiny world (tests/stages/stage_world.py:
a dataset store made by the ``dataset`` stage, the attribute chain and the other stages'
outputs, all run on tiny params) and broken copies of those (an array removed, labels
out of range, NaN features, an empty split, corrupt, unsafe or mismatched checkpoints).

Each case asserts what the pipeline promises (README, "What the pipeline guarantees"):
exit code 2, exactly one ``ERROR`` line naming the file or the dotted param, no
traceback, and no output (nor temporary sibling) in the output directory.
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

from tests.conftest import ROOT, deep_update
from tests.stages.stage_world import World, stage_argv, stage_inputs


@pytest.fixture(scope="module")
def world(tiny_world: World) -> World:
    return tiny_world


# ---------------------------------------------------------------------------------------
# Ways to break an input: each returns (input name, broken copy made in the scratch dir).
Break = Callable[[World, Path], tuple[str, Path]]


def _copy(src: Path, dst: Path) -> Path:
    if src.is_dir():
        shutil.copytree(src, dst)
    else:
        shutil.copy(src, dst)
    return dst


def drop(input_name: str, array: str) -> Break:
    """A copy of a store with one array (or group) removed."""

    def make(world: World, tmp: Path) -> tuple[str, Path]:
        src = world.input(input_name)
        dst = _copy(src, tmp / f"no_{array.replace('/', '_')}_{src.name}")
        shutil.rmtree(dst / array)
        return input_name, dst

    return make


def rewrite(input_name: str, array: str, fn: Callable[[np.ndarray], np.ndarray], tag: str) -> Break:
    """A copy of a store with ``array`` replaced by ``fn(array)`` (same shape and dtype)."""

    def make(world: World, tmp: Path) -> tuple[str, Path]:
        src = world.input(input_name)
        dst = _copy(src, tmp / f"{tag}_{src.name}")
        arr = zarr.open_group(str(dst), mode="r+")[array]
        with np.errstate(all="ignore"):
            arr[...] = fn(arr[...]).astype(arr.dtype)
        return input_name, dst

    return make


def missing(input_name: str) -> Break:
    def make(world: World, tmp: Path) -> tuple[str, Path]:
        return input_name, tmp / f"absent_{world.inputs[input_name].name}"

    return make


def replaced_by(input_name: str, other: str) -> Break:
    """Another artifact given where ``input_name`` belongs (e.g. the dataset as masks)."""

    def make(world: World, tmp: Path) -> tuple[str, Path]:
        return input_name, _copy(world.input(other), tmp / f"a_{other}_{world.inputs[other].name}")

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


def checkpoint(kind: str, input_name: str = "model") -> Break:
    """A bad weights file given as ``input_name``, made from the world's classifier:
    ``corrupt`` bytes, ``truncated``, ``pickled`` code (a payload that would touch a
    marker file), ``wrong_arch`` (weights of another architecture than the file claims),
    ``torchvision_state_dict`` (a torchvision shufflenet's), ``other_classes`` (a valid classifier for
    another class count)."""

    def make(world: World, tmp: Path) -> tuple[str, Path]:
        path = tmp / f"{kind}.pt"
        model = world.input("model")
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
        return input_name, path

    return make


@dataclass
class Case:
    stage: str
    name: str
    expect: tuple[str, ...]  # substrings of the one error line; {tmp} = the first broken input
    params: dict[str, Any] = field(default_factory=dict)
    breaks: tuple[Break, ...] = ()
    raw_params: str | None = None  # the params file's text instead of valid YAML

    @property
    def id(self) -> str:
        return f"{self.stage}-{self.name}"


def p(section: str, **values: Any) -> dict[str, Any]:
    """Params overrides for one section; ``{tmp}`` in a value = the case's scratch dir."""
    return {section: values}


NO_TEST = rewrite("dataset", "split", lambda a: np.where(a == 2, 0, a), "notest")
BAD_LABELS = rewrite("dataset", "labels", lambda a: a + 7, "badlabels")

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
    Case("train", "negative_lr", ("train.lr",), p("train", lr=-0.1)),
    Case("train", "unknown_arch", ("train.arch", "resnet9000"), p("train", arch="resnet9000")),
    Case("train", "unknown_optimizer", ("train.optimizer",), p("train", optimizer="lbfgs")),
    Case("train", "missing_dataset", ("{tmp}",), breaks=(missing("dataset"),)),
    Case(
        "train", "dataset_without_labels", ("{tmp}", "labels"), breaks=(drop("dataset", "labels"),)
    ),
    Case("train", "labels_out_of_range", ("{tmp}", "labels"), breaks=(BAD_LABELS,)),
    Case("train", "empty_test_split", ("{tmp}", "test split is empty"), breaks=(NO_TEST,)),
    Case(
        "train",
        "nan_class_attributes",
        ("{tmp}", "NaN"),
        breaks=(rewrite("dataset", "class_attributes", lambda a: a * np.nan, "nanatt"),),
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
        (checkpoint("corrupt"),),
    ),
    Case(
        "train",
        "weights_truncated",
        ("truncated.pt",),
        p("train", weights="{tmp}/truncated.pt"),
        (checkpoint("truncated"),),
    ),
    Case(
        "train",
        "weights_pickled_code",
        ("pickled.pt", "refused"),
        p("train", weights="{tmp}/pickled.pt"),
        (checkpoint("pickled"),),
    ),
    Case(
        "train",
        "weights_wrong_arch",
        ("torchvision_state_dict.pt", "architecture"),
        p("train", weights="{tmp}/torchvision_state_dict.pt"),
        (checkpoint("torchvision_state_dict"),),
    ),
    # --- features ------------------------------------------------------------------
    Case("features", "zero_batch", ("features.batch_size",), p("features", batch_size=0)),
    Case("features", "unknown_executor", ("scale.executor",), p("scale", executor="spark")),
    Case("features", "zero_workers", ("scale.workers",), p("scale", workers=0)),
    Case("features", "missing_images", ("{tmp}",), breaks=(missing("dataset"),)),
    Case(
        "features", "store_without_images", ("{tmp}", "images"), breaks=(drop("dataset", "images"),)
    ),
    Case("features", "model_missing", ("{tmp}", "not found"), breaks=(missing("model"),)),
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
    Case("adv_train", "missing_dataset", ("{tmp}",), breaks=(missing("dataset"),)),
    Case(
        "adv_train",
        "negative_labels",
        ("{tmp}", "labels"),
        breaks=(rewrite("dataset", "labels", lambda a: -1 - a, "neglabels"),),
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
    Case("attack", "missing_dataset", ("{tmp}",), breaks=(missing("dataset"),)),
    Case("attack", "missing_robust_dir", ("{tmp}",), breaks=(missing("robust"),)),
    Case(
        "attack",
        "empty_test_split",
        ("{tmp}", "test split is empty"),
        breaks=(rewrite("dataset", "split", lambda a: np.where(a == 2, 1, a), "notest"),),
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
    Case("adv_features", "missing_attack", ("{tmp}",), breaks=(missing("attack"),)),
    Case(
        "adv_features",
        "attack_without_images",
        ("{tmp}", "standard/targeted/eps_0.06/images"),
        breaks=(drop("attack", "standard/targeted/eps_0.06/images"),),
    ),
    Case("adv_features", "model_truncated", ("truncated.pt",), breaks=(checkpoint("truncated"),)),
    # --- sje -----------------------------------------------------------------------
    Case("sje", "zero_lr", ("sje.lr",), p("sje", lr=0.0)),
    Case("sje", "unknown_feature_norm", ("sje.feature_norm",), p("sje", feature_norm="l3")),
    Case("sje", "zero_epochs", ("sje.epochs",), p("sje", epochs=0)),
    Case("sje", "missing_features", ("{tmp}",), breaks=(missing("adv_features"),)),
    Case(
        "sje",
        "features_without_clean",
        ("{tmp}", "standard/clean/features"),
        breaks=(drop("adv_features", "standard/clean/features"),),
    ),
    Case(
        "sje",
        "nan_features",
        ("{tmp}", "standard/clean/features", "NaN"),
        breaks=(rewrite("adv_features", "standard/clean/features", nan_row, "nanfeat"),),
    ),
    Case(
        "sje",
        "inf_adversarial_features",
        ("{tmp}", "at_0.06/targeted/eps_0.06/features", "NaN or inf"),
        breaks=(
            rewrite(
                "adv_features", "at_0.06/targeted/eps_0.06/features", inf_above_mean, "inffeat"
            ),
        ),
    ),
    Case(
        "sje",
        "inf_class_attributes",
        ("{tmp}", "NaN or inf"),
        breaks=(rewrite("dataset", "class_attributes", lambda a: a / (a > 0.5), "infatt"),),
    ),
    Case(
        "sje",
        "empty_train_split",
        ("{tmp}", "train split is empty"),
        breaks=(rewrite("dataset", "split", lambda a: np.where(a == 0, 1, a), "notrain"),),
    ),
    # --- accuracy ------------------------------------------------------------------
    Case("accuracy", "zero_dpi", ("accuracy.dpi",), p("accuracy", dpi=0)),
    Case("accuracy", "missing_sje", ("{tmp}",), breaks=(missing("sje"),)),
    Case(
        "accuracy",
        "sje_without_predictions",
        ("{tmp}", "standard/clean/pred"),
        breaks=(drop("sje", "standard/clean/pred"),),
    ),
    Case(
        "accuracy",
        "features_without_logits",
        ("{tmp}", "at_0.06/untargeted/eps_0.06/logits"),
        breaks=(drop("adv_features", "at_0.06/untargeted/eps_0.06/logits"),),
    ),
    Case(
        "accuracy",
        "nan_logits",
        ("{tmp}", "NaN"),
        breaks=(
            rewrite("adv_features", "standard/untargeted/eps_0.06/logits", nan_row, "nanlogits"),
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
    Case("localized_attack", "missing_dataset", ("{tmp}",), breaks=(missing("dataset"),)),
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
    Case("explain", "missing_localized", ("{tmp}",), breaks=(missing("localized"),)),
    Case(
        "explain",
        "localized_without_regions",
        ("{tmp}", "region"),
        breaks=(drop("localized", "region"),),
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
    Case("explain_eval", "missing_explanations", ("{tmp}",), breaks=(missing("explanations"),)),
    Case(
        "explain_eval",
        "explanations_without_lime",
        ("{tmp}", "localized/lime_top"),
        breaks=(drop("explanations", "localized/lime_top"),),
    ),
    Case(
        "explain_eval",
        "nan_saliency",
        ("{tmp}", "localized/saliency", "NaN"),
        breaks=(rewrite("explanations", "localized/saliency", nan_row, "nansal"),),
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
    Case("train_detector", "missing_dataset", ("{tmp}",), breaks=(missing("dataset"),)),
    Case(
        "train_detector",
        "dataset_without_boxes",
        ("{tmp}", "part boxes"),
        breaks=(drop("dataset", "box_offsets"),),
    ),
    Case(
        "train_detector",
        "dataset_with_half_boxes",
        ("{tmp}", "box_xyxy"),
        breaks=(drop("dataset", "box_xyxy"),),
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
        (checkpoint("pickled"),),
    ),
    Case(
        "train_detector",
        "weights_of_a_classifier",
        ("model.pt", "detector"),
        p("train_detector", weights="{tmp}/model.pt"),
        (lambda w, t: ("classifier", _copy(w.input("model"), t / "model.pt")),),
    ),
    # --- detect --------------------------------------------------------------------
    Case("detect", "eps_above_one", ("detect.eps",), p("detect", eps=2.0)),
    Case("detect", "eps_not_attacked", ("detect.eps",), p("detect", eps=0.03)),
    Case("detect", "unknown_at_model", ("detect.at_model",), p("detect", at_model="at_0.5")),
    Case("detect", "missing_detector", ("{tmp}", "not found"), breaks=(missing("detector"),)),
    Case(
        "detect", "detector_corrupt", ("corrupt.pt",), breaks=(checkpoint("corrupt", "detector"),)
    ),
    Case(
        "detect",
        "classifier_as_detector",
        ("{tmp}", "detector"),
        breaks=(replaced_by("detector", "model"),),
    ),
    Case(
        "detect",
        "attack_without_images",
        ("{tmp}", "at_0.06/targeted/eps_0.06/images"),
        breaks=(drop("attack", "at_0.06/targeted/eps_0.06/images"),),
    ),
    # --- ground --------------------------------------------------------------------
    Case("ground", "top_k_above_attributes", ("ground.top_k",), p("ground", top_k=1000)),
    Case("ground", "unknown_classifier", ("ground.classifier",), p("ground", classifier="knn")),
    Case("ground", "zero_top_k", ("ground.top_k",), p("ground", top_k=0)),
    Case("ground", "missing_detections", ("{tmp}",), breaks=(missing("detections"),)),
    Case(
        "ground",
        "detections_without_clean",
        ("{tmp}", "clean"),
        breaks=(drop("detections", "clean"),),
    ),
    Case(
        "ground",
        "sje_without_at_attributes",
        ("{tmp}", "at_0.06/untargeted/eps_0.06/attributes"),
        breaks=(drop("sje", "at_0.06/untargeted/eps_0.06/attributes"),),
    ),
    Case(
        "ground",
        "nan_attributes",
        ("{tmp}", "NaN"),
        breaks=(rewrite("sje", "standard/targeted/eps_0.06/attributes", nan_row, "nanattr"),),
    ),
    # --- distances -----------------------------------------------------------------
    Case("distances", "eps_not_attacked", ("distances.eps",), p("distances", eps=0.03)),
    Case("distances", "zero_fraction", ("distances.fraction",), p("distances", fraction=0.0)),
    Case("distances", "one_bin", ("distances.bins",), p("distances", bins=1)),
    Case("distances", "unknown_scope", ("distances.scope",), p("distances", scope="local")),
    Case("distances", "missing_sje", ("{tmp}",), breaks=(missing("sje"),)),
    Case(
        "distances",
        "sje_without_targeted_attributes",
        ("{tmp}", "at_0.06/targeted/eps_0.06/attributes"),
        breaks=(drop("sje", "at_0.06/targeted/eps_0.06/attributes"),),
    ),
    Case(
        "distances",
        "nan_attributes",
        ("{tmp}", "NaN"),
        breaks=(rewrite("sje", "at_0.06/targeted/eps_0.06/attributes", nan_row, "nanattr"),),
    ),
    # --- report --------------------------------------------------------------------
    Case("report", "missing_dvc_yaml", ("{tmp}",), breaks=(missing("dvc_yaml"),)),
    Case(
        "report",
        "dvc_yaml_not_yaml",
        ("{tmp}",),
        breaks=(lambda w, t: ("dvc_yaml", _write(t / "dvc.yaml", "stages: [unclosed\n")),),
    ),
    # --- the LAN stages (Nguyen et al.) --------------------------------------------
    Case("lan_train", "zero_beta", ("lan_train.beta",), p("lan_train", beta=0.0)),
    Case("lan_train", "unknown_noise", ("lan_train.noise",), p("lan_train", noise="pink")),
    Case("lan_train", "missing_dataset", ("{tmp}",), breaks=(missing("dataset"),)),
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
    Case("mask_classifier", "missing_masks", ("{tmp}",), breaks=(missing("masks"),)),
    Case(
        "mask_classifier",
        "dataset_given_as_masks",
        ("{tmp}", "masks"),
        breaks=(replaced_by("masks", "dataset"),),
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
    Case("lan_attacks", "missing_dataset", ("{tmp}",), breaks=(missing("dataset"),)),
    Case(
        "lan_attacks",
        "model_of_other_classes",
        ("other_classes.pt", "classes"),
        breaks=(checkpoint("other_classes"),),
    ),
    Case("lan_detect", "zero_batch", ("lan_detect.batch_size",), p("lan_detect", batch_size=0)),
    Case("lan_detect", "missing_lan", ("{tmp}", "not found"), breaks=(missing("lan"),)),
    Case("lan_detect", "lan_corrupt", ("corrupt.pt",), breaks=(checkpoint("corrupt", "lan"),)),
    Case(
        "lan_detect",
        "classifier_as_lan",
        ("{tmp}",),
        breaks=(replaced_by("lan", "model"),),
    ),
    Case(
        "lan_detect",
        "mask_classifier_pickled_code",
        ("pickled.pt", "refused"),
        breaks=(checkpoint("pickled", "mask_classifier"),),
    ),
    Case("lan_detect", "missing_adversarial", ("{tmp}",), breaks=(missing("adversarial"),)),
    # --- attack to explain (Jalwana et al.) -----------------------------------------
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
    Case("a2e_explain", "missing_dataset", ("{tmp}",), breaks=(missing("dataset"),)),
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
    Case("a2e_robust", "missing_robust_dir", ("{tmp}",), breaks=(missing("robust"),)),
    Case("a2e_robust", "model_corrupt", ("corrupt.pt",), breaks=(checkpoint("corrupt"),)),
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
    Case("igan_train", "missing_dataset", ("{tmp}",), breaks=(missing("dataset"),)),
    Case("igan_train", "labels_out_of_range", ("{tmp}", "labels"), breaks=(BAD_LABELS,)),
    Case("igan_explain", "zero_steps", ("igan_explain.steps",), p("igan_explain", steps=0)),
    Case(
        "igan_explain", "missing_models", ("{tmp}", "not found"), breaks=(missing("igan_models"),)
    ),
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
        breaks=(missing("igan_models"),),
    ),
    Case(
        "pooling_study",
        "zero_pgd_steps",
        ("pooling_study", "pgd_steps"),
        p("pooling_study", pgd_steps=[0, 40]),
    ),
    Case("pooling_study", "eps_above_one", ("pooling_study.eps",), p("pooling_study", eps=1.5)),
    Case(
        "pooling_study", "missing_models", ("{tmp}", "not found"), breaks=(missing("igan_models"),)
    ),
]


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def _error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if " ERROR " in line or line.startswith("ERROR")]


def _left_in(path: Path) -> list[Path]:
    return sorted(path.rglob("*")) if path.exists() else []


def prepare(world: World, case: Case, tmp: Path) -> tuple[list[str], list[Path]]:
    """Broken inputs and params of ``case`` in ``tmp``; returns (argv, broken paths)."""
    broken = tmp / "in"
    broken.mkdir()
    (tmp / "out").mkdir()
    inputs = dict(world.inputs)
    made = []
    for make in case.breaks:
        name, path = make(world, broken)
        inputs[name] = path
        made.append(path)
    for name in stage_inputs(case.stage):
        if inputs[name] == world.inputs[name]:
            world.input(name)  # skips the case when this input could not be built
    overrides = yaml.safe_load(yaml.safe_dump(case.params).replace("{tmp}", str(broken)))
    params_file = tmp / "params.yaml"
    params_file.write_text(
        case.raw_params
        if case.raw_params is not None
        else yaml.safe_dump(deep_update(world.params, overrides), sort_keys=False)
    )
    argv = ["--params", str(params_file), *stage_argv(case.stage, inputs, tmp / "out")]
    return argv, made


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


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
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
