"""Every params value that must fit the dataset, checked before anything expensive runs.

Some params only make sense for one dataset: a class index, a number of attributes, an
eps that must be one the ``attack`` stage computes. Each stage checks its own when it
runs, but a run that fails at stage 20 of 27 has wasted every stage before it. The
``validate`` stage (first in the DAG, before even ``dataset``) reads the dataset's
class and attribute lists (cheap: the index, no pixels) and checks all of them at once,
with the same resolvers the stages use (:mod:`advinterp.config.classes`), so a params
file for another dataset fails in seconds, naming every key that does not fit.

:data:`CHECKED` declares which keys of which sections are checked; the stage declares
exactly those as its DVC params, and :func:`check_params` reads nothing else (it is
handed only those keys), so the declaration cannot fall behind the checks.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from advinterp.config.a2e_explain import A2EExplainConfig
from advinterp.config.a2e_robust import A2ERobustConfig
from advinterp.config.adv_train import AdvTrainConfig
from advinterp.config.attack import AttackConfig
from advinterp.config.classes import ClassRef, resolve_class, resolve_classes
from advinterp.config.compare import CompareConfig
from advinterp.config.core import Section, parse_section
from advinterp.config.detect import DetectConfig
from advinterp.config.distances import DistancesConfig
from advinterp.config.explain import ExplainConfig
from advinterp.config.ground import GroundConfig
from advinterp.config.localized_attack import LocalizedAttackConfig
from advinterp.data.adversarial import model_key
from advinterp.data.facts import DatasetFacts
from advinterp.errors import ParamError

CHECKED: dict[type[Section], tuple[str, ...]] = {
    AttackConfig: ("eps",),
    AdvTrainConfig: ("eps",),
    LocalizedAttackConfig: ("target",),
    ExplainConfig: ("ifgsm_eps",),
    DetectConfig: ("eps", "at_model"),
    GroundConfig: ("top_k",),
    DistancesConfig: ("eps", "at_model"),
    CompareConfig: ("eps",),
    A2EExplainConfig: ("targets", "region"),
    A2ERobustConfig: ("targets", "downsample"),
}
"""Section model -> the keys checked against the dataset (the ``validate`` stage's params)."""


def checked_keys(params: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """The part of a params mapping :func:`check_params` reads: the :data:`CHECKED` keys
    of every section present (a profile without a method has no section for it)."""
    picked: dict[str, dict[str, Any]] = {}
    for model, keys in CHECKED.items():
        section = params.get(str(model.section))
        if isinstance(section, Mapping):
            picked[str(model.section)] = {k: section[k] for k in keys if k in section}
    return picked


def check_params(
    params: Mapping[str, Mapping[str, Any]], facts: DatasetFacts, seed: int
) -> dict[str, list[int]]:
    """Check the :data:`CHECKED` keys against ``facts``; return the classes each
    class-valued param resolves to (``{"a2e_explain.targets": [3, 11], ...}``).

    ``params`` holds only those keys (:func:`checked_keys`); a section it lacks is not
    checked. ``seed`` is ``base.seed``, which ``{draw: k}`` draws with.

    Raises:
        ParamError: one message listing every key that does not fit, each with its value
            and what the dataset has.
    """
    problems: list[str] = []
    cfg: dict[str, Any] = {}
    for model in CHECKED:
        name = str(model.section)
        if name in params:
            try:
                cfg[name] = parse_section(model, dict(params[name]))
            except ParamError as err:
                problems.append(str(err).removeprefix("params: "))
    names, C = facts.class_names, len(facts.class_names)
    classes: dict[str, list[int]] = {}

    def one(param: str, choice: ClassRef) -> None:
        try:
            classes[param] = [resolve_class(choice, names, param)]
        except ParamError as err:
            problems.append(str(err))

    def many(param: str, choice: Any) -> list[int]:
        try:
            classes[param] = resolve_classes(choice, names, seed, param)
        except ParamError as err:
            problems.append(str(err))
        return classes.get(param, [])

    if "localized_attack" in cfg:
        one("localized_attack.target", cfg["localized_attack"].target)
    if "a2e_explain" in cfg:
        a2e = cfg["a2e_explain"]
        targets = many("a2e_explain.targets", a2e.targets)
        if a2e.region.target is not None:
            one("a2e_explain.region.target", a2e.region.target)
        elif targets:
            classes["a2e_explain.region.target"] = targets[:1]
    if "a2e_robust" in cfg:
        many("a2e_robust.targets", cfg["a2e_robust"].targets)
        if facts.image_size % cfg["a2e_robust"].downsample:
            problems.append(
                f"a2e_robust.downsample: {cfg['a2e_robust'].downsample} does not divide "
                f"dataset.image_size {facts.image_size}"
            )
    if "ground" in cfg and cfg["ground"].top_k > len(facts.attribute_names):
        problems.append(
            f"ground.top_k: {cfg['ground'].top_k} is more than the dataset's "
            f"{len(facts.attribute_names)} attributes"
        )
    problems += _grid_problems(cfg)
    if problems:
        raise ParamError(
            f"params do not fit the {facts.source} dataset ({C} classes, "
            f"{len(facts.attribute_names)} attributes, {facts.image_size} px): "
            + "; ".join(problems)
        )
    return classes


def _grid_problems(cfg: Mapping[str, Any]) -> list[str]:
    """Budgets that must be ones ``attack`` computes, and AT models ``adv_train`` trains."""
    if "attack" not in cfg:
        return []
    grid = list(cfg["attack"].eps)
    problems = []
    for param in ("explain.ifgsm_eps", "detect.eps", "distances.eps", "compare.eps"):
        section, key = param.split(".")
        if section in cfg:
            eps = getattr(cfg[section], key)
            if not any(math.isclose(eps, e) for e in grid):
                problems.append(f"{param}: {eps} is not in attack.eps {grid}")
    if "adv_train" in cfg:
        trained = [model_key(e) for e in cfg["adv_train"].eps]
        # DVC names each adv_train run's files by Python's str of its eps; readers find a
        # model by its key, so the two must agree.
        problems += [
            f"adv_train.eps: {e} has more digits than a model's name keeps (at most 6)"
            for e in cfg["adv_train"].eps
            if f"at_{float(e)}" != model_key(e)
        ]
        for section in ("detect", "distances"):
            choice = cfg[section].at_model if section in cfg else "auto"
            if choice != "auto" and choice not in trained:
                problems.append(
                    f"{section}.at_model: {choice!r} is not trained (adv_train.eps gives {trained})"
                )
    return problems
