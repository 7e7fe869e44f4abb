"""What the comparison compares, without importing any model code: the maps (one per
method, in table order) and the references they are scored against.

The report and the tables read these names; :mod:`.maps` makes the maps and
:mod:`.study` the references.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class MapMethod:
    """One column of the comparison.

    Attributes:
        name: its key in stores, tables and figures; label: its figure title.
        method: the ``Method.key`` of the paper it comes from (``baseline``: none).
        level: ``example`` (a map of this image) or ``class`` (one map per class).
        model: the classifier it explains.
    """

    name: str
    label: str
    method: str
    level: Literal["example", "class"]
    model: str


METHODS: tuple[MapMethod, ...] = (
    MapMethod("saliency", "saliency", "localized", "example", "standard"),
    MapMethod("guided_backprop", "guided backprop", "localized", "example", "standard"),
    MapMethod("lime", "LIME", "localized", "example", "standard"),
    MapMethod("lan_mask", "LAN mask", "lan", "example", "standard"),
    MapMethod("grounding", "attribute boxes", "attributes", "example", "standard"),
    MapMethod("interpretgan", "InterpretGAN", "igan", "example", "pooling CNN (transfer)"),
    MapMethod("a2e_class", "A2E class*", "a2e", "class", "standard"),
    MapMethod("centre", "centre prior", "baseline", "example", "none"),
    MapMethod("random", "random", "baseline", "example", "none"),
)
METHOD_NAMES: tuple[str, ...] = tuple(m.name for m in METHODS)


REFERENCES: dict[str, str] = {
    "perturbation": "top pixels of |x̂ - x|",
    "region": "the attacked region (localized attacks)",
    "evidence": "part boxes of the most-changed attributes",
    "parts": "every part box (control: the object)",
}
DELTA = "delta"  # |x̂ - x| as a row of the agreement matrix: the perturbation itself
