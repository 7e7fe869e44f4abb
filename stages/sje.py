"""Stage ``sje``: structured joint embedding (Gulshad et al. Eqs. 3-6) on every model's θ(x).

One W per model, fit on its clean train-split features, then θ(x)W, compatibilities and
nearest-embedding classes of every image set of the ``adv_features`` store
(:mod:`advinterp.embedding.sje_chain`; layout in docs/artifacts.md).
"""

from __future__ import annotations

import logging

from advinterp.config.attributes import ATTRIBUTES
from advinterp.config.sje import SjeConfig
from advinterp.data.adversarial import ChainLayout
from advinterp.data.artifact import load_dataset
from advinterp.embedding.sje_chain import sje_chain, write_sje_store
from advinterp.store import atomic_output, open_store, write_csv, write_json
from stages.stage import Stage, StageIO, metrics, out, plot, run

log = logging.getLogger("advinterp.stages.sje")

STAGE = Stage(
    name="sje",
    method=ATTRIBUTES,
    desc="Gulshad et al. Sec. 3.2, Eqs. 3-6 - structured joint embedding per model (ranking "
    "loss, Eq. 6 SGD in mini-batches, early stopping on val); predicted attributes θ(x)W and "
    "nearest-class-embedding labels of every clean and adversarial feature set.",
    inputs={"dataset": "data/dataset.zarr", "features": "artifacts/adv_features/features.zarr"},
    outputs={
        "out": out("artifacts/sje/sje.zarr"),
        "metrics": metrics("artifacts/sje/metrics.json"),
        "history": plot("artifacts/sje/history.csv"),
    },
    configs=(SjeConfig,),
    base=("seed", "num_threads", "chunk_size"),
)


def main(io: StageIO) -> None:
    cfg = io.config(SjeConfig)
    index = load_dataset(io.dataset).index
    feats = open_store(io.features, {"rows": 1, "labels": 1, "targets": 1})
    layout = ChainLayout.from_attrs(feats.attrs, str(io.features))
    layout.require(feats, str(io.features), per_model=("clean/features",), per_set=("features",))
    result = sje_chain(
        feats,
        layout,
        index.labels,
        index.split,
        index.class_attributes,
        **cfg.model_dump(),
        seed=io.base.seed,
        origin=str(io.features),
    )
    with atomic_output(io.out) as tmp:
        write_sje_store(
            tmp,
            result,
            attrs={
                **layout.to_attrs(),
                "class_names": index.class_names,
                "attribute_names": index.attribute_names,
                "params": {"sje": cfg.model_dump(mode="json"), "features": str(io.features)},
            },
            samples={name: feats[name][:] for name in ("rows", "labels", "targets")},
            center=cfg.center,
            feature_norm=cfg.feature_norm,
            chunk=io.base.chunk_size,
        )
    write_csv(io.history, result.history)
    write_json(io.metrics, result.metrics)


if __name__ == "__main__":
    run(STAGE, main)
