"""Stage ``validate``: every params value that must fit the dataset, checked first.

Reads the dataset's index (class and attribute lists; no pixel is decoded) and checks
the class choices, budgets and counts of every method's section against it
(:mod:`advinterp.preflight`), in the first seconds of ``dvc repro`` or the flow: a
params file for another dataset fails here, naming every key that does not fit, before
``dataset`` or any expensive stage runs. Writes the dataset's facts (what ``dataset``
then builds, and depends on, so this stage comes first) and the classes each
class-valued param resolved to.
"""

from __future__ import annotations

import logging

import pandas as pd

from advinterp.config.core import SHARED, read_params
from advinterp.config.dataset import DatasetConfig
from advinterp.data.facts import dataset_facts
from advinterp.preflight import CHECKED, check_params, checked_keys
from advinterp.store import write_csv, write_json
from stages.stage import Keys, Stage, StageIO, out, run, table

log = logging.getLogger("advinterp.stages.validate")

STAGE = Stage(
    name="validate",
    method=SHARED,
    desc="Check every params value that must fit the dataset (class choices, eps in the "
    "attack grid, AT models, attribute and pixel counts) against the dataset's index, "
    "before any other stage runs.",
    outputs={
        "facts": out("artifacts/validate/dataset.json"),
        "classes": table("artifacts/validate/classes.csv"),
    },
    configs=(DatasetConfig, *(Keys(model, keys) for model, keys in CHECKED.items())),
    base=("seed",),
)


def main(io: StageIO) -> None:
    cfg = io.config(DatasetConfig)
    facts = dataset_facts(cfg, io.base.seed)
    for model in CHECKED:  # present (DVC needs the declared keys) and valid as a whole
        io.config(model)
    classes = check_params(checked_keys(read_params(io.params)), facts, io.base.seed)
    log.info(
        "%s: %d classes, %d attributes, %d px; every checked param fits",
        facts.source,
        len(facts.class_names),
        len(facts.attribute_names),
        facts.image_size,
    )
    rows = [
        {"param": p, "class": c, "name": facts.class_names[c]}
        for p, cs in classes.items()
        for c in cs
    ]
    write_json(io.facts, facts.to_json())
    write_csv(io.classes, pd.DataFrame(rows, columns=["param", "class", "name"]))


if __name__ == "__main__":
    run(STAGE, main)
