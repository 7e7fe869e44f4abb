"""What a dataset is, in the few numbers params are checked against.

The ``validate`` stage reads these facts from the dataset's index (no pixel decoded) to
check every params section before anything expensive runs (:mod:`advinterp.preflight`);
the ``dataset`` stage then checks it builds the dataset that was validated. Kept apart
from the checks so the ``dataset`` stage imports no method's config (an edit to one
would otherwise rerun it).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from advinterp.config.dataset import DatasetConfig
from advinterp.data.dataset import AttributeIndex
from advinterp.data.sources import open_source
from advinterp.errors import DatasetError


@dataclass(frozen=True)
class DatasetFacts:
    """What the params are checked against: the dataset's classes, attributes and size."""

    source: str
    class_names: list[str]
    attribute_names: list[str]
    image_size: int
    images: int

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> DatasetFacts:
        return cls(**{k: data[k] for k in cls.__dataclass_fields__})


def dataset_facts(
    cfg: DatasetConfig, seed: int, index: AttributeIndex | None = None
) -> DatasetFacts:
    """The facts of the dataset ``cfg`` names, from its index alone (no pixel is decoded);
    ``index`` = that index when the caller has opened the source already.

    Raises:
        DatasetError: the dataset's files are missing or malformed.
    """
    if index is None:
        index, _ = open_source(cfg, seed)
    return DatasetFacts(
        cfg.source,
        list(index.class_names),
        list(index.attribute_names),
        cfg.image_size,
        int(index.num_samples),
    )


def expect_facts(validated: Mapping[str, Any], facts: DatasetFacts, where: Path | str) -> None:
    """Check that the dataset being built is the one ``validate`` checked the params on.

    Raises:
        DatasetError: the dataset's files changed since (``dataset.root`` is no DVC
            dependency: DVC would not hash a real dataset's thousands of images).
    """
    before = DatasetFacts.from_json(validated)
    if before != facts:
        changed = [
            k for k in DatasetFacts.__dataclass_fields__ if getattr(before, k) != getattr(facts, k)
        ]
        raise DatasetError(
            f"{where}: the dataset's {', '.join(changed)} changed since the validate stage "
            "checked the params against it; run `dvc repro` again (it reruns validate first)"
        )
