"""A params file with some values replaced by another's: the one way to resize a run.

``params/smoke.yaml`` shrinks the real run's params (``params/cub_resnet152.yaml``) to
minutes on a CPU (image size, counts, epochs, a small torchvision model) without
touching what the run means: its datasets, class choices, budgets and methods. CI runs
the whole DAG from that merge (``tests/stages/test_pipeline_dvc.py``), so every section
and stage of the real config runs before anyone spends GPU hours on it::

    python -m flows.params overlay params/cub_resnet152.yaml params/smoke.yaml -o params.yaml
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from advinterp.config.core import all_sections, parse_section
from advinterp.errors import ParamError


def overlay(base: Mapping[str, Any], over: Mapping[str, Any], where: str) -> dict[str, Any]:
    """``base`` with every value ``over`` names replaced, recursively.

    ``over`` may only replace keys ``base`` has (a mapping of ``base`` is merged into,
    anything else is replaced whole), so a misspelt key is an error rather than a value
    nobody reads. The result's sections are validated by their models.

    Raises:
        ParamError: naming ``where`` (the overlay file) and the dotted key ``base``
            lacks, or the merged value a section model refuses.
    """
    merged = _merge(base, over, where, ())
    sections = all_sections()
    for name, value in merged.items():
        if name in sections:
            parse_section(sections[name], value, source=f"{where} over the base file")
    return merged


def _merge(
    base: Mapping[str, Any], over: Mapping[str, Any], where: str, at: tuple[str, ...]
) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        dotted = ".".join((*at, str(key)))
        if key not in base:
            raise ParamError(f"{where}: {dotted} is not a key of the base params file")
        if isinstance(value, Mapping) and isinstance(base[key], Mapping):
            out[key] = _merge(base[key], value, where, (*at, str(key)))
        else:
            out[key] = value
    return out
