"""Which figure and which three numbers summarise each method on the report's overview.

One declaration per method, here and nowhere else: :data:`OVERVIEWS` maps a method key
to its key figure (a path the page shows anyway: a PNG a stage writes, or a CSV curve
the report draws) and to three labelled numbers, each a dotted key of a metrics file.
``{seed}`` in a path stands for every seed of a seeded stage: a number is then shown as
mean ± sd over the seeds found, a figure is the first seed's.

A dotted key walks the nested metrics JSON; a key may itself hold dots (``eps_0.01``),
which :func:`lookup` resolves. A key that names a ``{mean, sd, ...}`` object (a spread
the stage computed itself) is shown as mean ± sd. ``tests/test_report_overview.py``
checks every declaration against the committed metrics, so a renamed metric fails a
test rather than the page; at render time a missing number is shown as missing, with
the key it looked for.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from advinterp.analysis.spread import spread
from advinterp.errors import StoreError
from advinterp.report import KeyNumberText, OverviewCard
from advinterp.store import read_json

SEED = "{seed}"


@dataclass(frozen=True)
class KeyNumber:
    """One headline number: ``key`` (dotted) of the metrics JSON at ``metrics``."""

    metrics: str
    key: str
    label: str


@dataclass(frozen=True)
class Overview:
    """A method's one-screen summary: a key figure, three numbers, one line to read them by."""

    numbers: tuple[KeyNumber, KeyNumber, KeyNumber]
    figure: str | None = None
    caption: str = ""


_ACC = "artifacts/accuracy/seed_{seed}/metrics.json"
_DIST = "artifacts/distances/seed_{seed}/metrics.json"
_EVAL = "artifacts/explain_eval/seed_{seed}/metrics.json"
_LAN = "artifacts/digits/lan_detect/seed_{seed}/metrics.json"
_VUL = "artifacts/digits/igan_vulnerability/seed_{seed}/metrics.json"
_A2E = "artifacts/a2e_explain/metrics.json"
_CMP = "artifacts/compare/metrics.json"

# Keyed by the ``Method.key`` strings (advinterp/config/*.py), not the Method objects:
# importing every method's config module would make the report a dvc dep of each, and
# tests/test_report.py checks each key against the methods dvc.yaml declares.
OVERVIEWS: dict[str, Overview] = {
    "shared": Overview(
        figure="artifacts/train/history.csv",
        caption="The classifier f every method explains, and the attack that fools it.",
        numbers=(
            KeyNumber("artifacts/train/metrics.json", "test_accuracy", "birds: f's test accuracy"),
            KeyNumber(
                "artifacts/digits/train/seed_{seed}/metrics.json",
                "test_accuracy",
                "digits: f's test accuracy",
            ),
            KeyNumber(
                "artifacts/attack/metrics.json",
                "standard.untargeted.eps_0.02.success_rate",
                "birds: untargeted IFGSM success at eps 0.02",
            ),
        ),
    ),
    "attributes": Overview(
        figure="artifacts/accuracy/seed_{seed}/figure4.png",
        caption="Softmax vs SJE accuracy against eps, without and with adversarial training "
        "(Gulshad et al. Fig. 4).",
        numbers=(
            KeyNumber(_ACC, "untargeted.eps_0.01.sje_adv", "SJE accuracy under IFGSM (eps 0.01)"),
            KeyNumber(
                _ACC,
                "untargeted.eps_0.01.sje_adv_at",
                "the same with adversarial training",
            ),
            KeyNumber(
                _DIST,
                "closer_to_wrong_class_by_reading.softmax_names_wrong_class.top_changed.untargeted",
                "adversarial attributes closer to the wrong class",
            ),
        ),
    ),
    "localized": Overview(
        figure="artifacts/explain_eval/seed_{seed}/figure4_curves.png",
        caption="How well each explainer finds the attacked region, by explanation size "
        "(Göpfert et al. Fig. 4); mean rank 1 = best of the three.",
        numbers=(
            KeyNumber(_EVAL, "mean_rank.lime.jaccard", "LIME's mean rank (Jaccard)"),
            KeyNumber(_EVAL, "mean_rank.guided_backprop.jaccard", "guided backprop's mean rank"),
            KeyNumber(_EVAL, "mean_rank.saliency.jaccard", "saliency's mean rank"),
        ),
    ),
    "lan": Overview(
        figure="artifacts/digits/lan_detect/seed_{seed}/roc.png",
        caption="Digits: flag an input when the mask classifier f2 disagrees with f1; ROC of "
        "1 - p_f2(f1's class) per attack.",
        numbers=(
            KeyNumber(
                _LAN,
                "table1_mask_class_kept.direct/fgsm",
                "masks that keep their class under FGSM",
            ),
            KeyNumber(_LAN, "table2_direct.fgsm.true_positive", "FGSM examples flagged (TP)"),
            KeyNumber(_LAN, "table2_direct.fgsm.true_negative", "benign images passed (TN)"),
        ),
    ),
    "a2e": Overview(
        figure="artifacts/a2e_explain/perturbations.png",
        caption="Distribution-level perturbations per target class, for the standard and a "
        "second model (Jalwana et al. Fig. 3).",
        numbers=(
            KeyNumber(
                _A2E,
                "headline.perturbation_classified_as_target.standard.standard",
                "the perturbation alone is seen as its class",
            ),
            KeyNumber(
                _A2E,
                "headline.perturbation_classified_as_target.standard.second",
                "... by a second model",
            ),
            KeyNumber(
                _A2E,
                "headline.heldout_fooling_rate.standard.standard",
                "held-out images it moves into its class",
            ),
        ),
    ),
    "igan": Overview(
        figure="artifacts/digits/igan_vulnerability/seed_{seed}/vulnerability.png",
        caption="Digits: accuracy of f on each layer's InterpretGAN explanation of adversarial "
        "examples, and the vulnerability Vul_i it implies (Zheng et al. Table 1).",
        numbers=(
            KeyNumber(_VUL, "natural.layers.conv1.vul", "Vul of conv1, natural model"),
            KeyNumber(_VUL, "robust.layers.conv1.vul", "Vul of conv1, adversarially trained"),
            KeyNumber(
                "artifacts/digits/pooling_study/seed_{seed}/metrics.json",
                "avg_minus_max.pgd40",
                "PGD-40 accuracy: average - max pooling",
            ),
        ),
    ),
    "comparison": Overview(
        figure="artifacts/compare/maps.png",
        caption="Every method's map of the same adversarial examples; numbers: share of a "
        "map's top pixels inside the part boxes of the most-changed attributes.",
        numbers=(
            KeyNumber(_CMP, "overlap.evidence.lan_mask", "LAN masks"),
            KeyNumber(_CMP, "overlap.evidence.centre", "centre prior (no model at all)"),
            KeyNumber(_CMP, "overlap.evidence.lan_mask.random", "a random map (expected)"),
        ),
    ),
    "findings": Overview(
        caption="Verdicts of the papers' headline claims (the table below).",
        numbers=(
            KeyNumber("artifacts/findings/metrics.json", "reproduced", "claims reproduced"),
            KeyNumber("artifacts/findings/metrics.json", "partly", "partly"),
            KeyNumber("artifacts/findings/metrics.json", "not reproduced", "not reproduced"),
        ),
    ),
}


def lookup(data: Any, dotted: str) -> Any:
    """``data[k1][k2]...`` for ``dotted`` = ``"k1.k2..."``, where a key may itself contain
    dots (``"untargeted.eps_0.01.sje_adv"``): the longest matching key wins.

    Raises:
        KeyError: naming the part of ``dotted`` that no key matches.
    """
    if isinstance(data, Mapping):
        if dotted in data:
            return data[dotted]
        cuts = [i for i, ch in enumerate(dotted) if ch == "."]
        for i in reversed(cuts):
            head, rest = dotted[:i], dotted[i + 1 :]
            if head in data:
                try:
                    return lookup(data[head], rest)
                except KeyError:
                    continue
    raise KeyError(dotted)


def _seeded(root: Path, pattern: str) -> list[tuple[int, Path]]:
    """(seed, path) of every existing path ``pattern`` names, in seed order."""
    rx = re.compile(re.escape(pattern).replace(re.escape(SEED), r"(\d+)") + "$")
    found = []
    for path in root.glob(pattern.replace(SEED, "*")):
        m = rx.match(path.relative_to(root).as_posix())
        if m:
            found.append((int(m[1]), path))
    return sorted(found)


def seed_paths(root: Path, pattern: str) -> list[Path]:
    """The files ``pattern`` names under ``root``: every seed's, in seed order, where it
    holds ``{seed}``."""
    if SEED not in pattern:
        return [root / pattern] if (root / pattern).is_file() else []
    return [path for _, path in _seeded(root, pattern) if path.is_file()]


def first_seed(root: Path, pattern: str) -> str:
    """``pattern`` with ``{seed}`` replaced by the first seed found (``0`` if none is)."""
    if SEED not in pattern:
        return pattern
    seeds = _seeded(root, pattern)
    return pattern.replace(SEED, str(seeds[0][0] if seeds else 0))


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


def _fmt(v: float) -> str:
    """A count as it is; a measure to three decimals (three significant digits where
    that would show nothing, or too much)."""
    if isinstance(v, int):
        return str(v)
    return f"{v:.3f}" if 0.001 <= abs(v) < 1000 or v == 0 else f"{v:.3g}"


def number_text(root: Path, number: KeyNumber) -> KeyNumberText:
    """The number as the page shows it: one value, or mean ± sd over seeds (or over what
    the stage itself spread).

    Raises:
        StoreError: no metrics file, a key that is not there, or not a number.
    """
    paths = seed_paths(root, number.metrics)
    if not paths:
        raise StoreError(f"{number.metrics}: no such metrics file")
    values = []
    for path in paths:
        try:
            v = lookup(read_json(path), number.key)
        except KeyError:
            raise StoreError(f"{path}: no metric '{number.key}'") from None
        if isinstance(v, Mapping) and _is_number(v.get("mean")) and _is_number(v.get("sd")):
            if len(paths) > 1:
                raise StoreError(f"{number.metrics}: a spread per seed ({number.key})")
            n = v.get("n")
            text = f"{_fmt(v['mean'])} ± {_fmt(v['sd'])}"
            over = f"mean ± sd, n = {n}" if n else "mean ± sd"
            return KeyNumberText(
                number.label, text, f"{path.relative_to(root)}: {number.key}", over
            )
        if not _is_number(v):
            raise StoreError(f"{path}: '{number.key}' is {v!r}, not a number")
        values.append(v)
    source = f"{number.metrics.replace(SEED, '*')}: {number.key}"
    if len(values) == 1:
        return KeyNumberText(number.label, _fmt(values[0]), source)
    s = spread(values)
    return KeyNumberText(
        number.label,
        f"{_fmt(s['mean'])} ± {_fmt(s['sd'])}",
        source,
        f"mean ± sd over {s['n']} seeds",
    )


def problems(root: Path, overviews: Mapping[str, Overview] = OVERVIEWS) -> list[str]:
    """Everything a declaration names that ``root`` lacks: metrics files, keys, figures."""
    found = []
    for method, ov in overviews.items():
        for number in ov.numbers:
            try:
                number_text(root, number)
            except StoreError as err:
                found.append(f"{method}: {err}")
        if ov.figure is not None and not (root / first_seed(root, ov.figure)).exists():
            found.append(f"{method}: figure {ov.figure} not found")
    return found


def overview_cards(
    root: Path, headings: Mapping[str, str], overviews: Mapping[str, Overview] = OVERVIEWS
) -> dict[str, OverviewCard]:
    """One card per declared method with a heading (``headings``: key -> heading, the
    methods the page shows); a number that cannot be read is shown as missing."""
    cards = {}
    for method, ov in overviews.items():
        if method not in headings:
            continue
        numbers = []
        for number in ov.numbers:
            try:
                numbers.append(number_text(root, number))
            except StoreError as err:
                numbers.append(KeyNumberText(number.label, "missing", str(err)))
        figure = None if ov.figure is None else first_seed(root, ov.figure)
        cards[method] = OverviewCard(method, headings[method], figure, numbers, ov.caption)
    return cards


def declared_paths(overviews: Iterable[Overview] = OVERVIEWS.values()) -> list[str]:
    """Every metrics file and figure the declarations name (patterns as written)."""
    return [p for ov in overviews for p in [*(n.metrics for n in ov.numbers), ov.figure] if p]
