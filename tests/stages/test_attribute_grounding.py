"""Stages train_detector, detect, ground and distances on tiny stores in tmp_path.

The upstream stores (attack, sje) are built here in the layout docs/artifacts.md
describes, with controlled predictions, so the stages' wiring (which images, which
arrays, which equations) is checked without running the attack chain.
"""

from __future__ import annotations

import json
from pathlib import Path
from types import ModuleType

import numpy as np
import pandas as pd
import pytest
import yaml

from advinterp.config.dataset import SyntheticConfig
from advinterp.data.adversarial import MODES, ChainLayout, ModelEntry
from advinterp.data.artifact import write_dataset
from advinterp.data.synthetic import generate
from advinterp.errors import ParamError
from advinterp.grounding.experiment import CASES
from advinterp.runtime import configure_threads, seed_everything
from advinterp.store import create_group, open_store, write_array
from stages import detect, distances, ground, train_detector
from stages.stage import StageIO
from tests.conftest import tiny_params

EPS = (0.03, 0.06)
MODELS = (ModelEntry("standard", None, "m.pt"), ModelEntry("at_0.06", 0.06, "a.pt"))


@pytest.fixture(scope="module")
def chain(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("chain")
    cfg = SyntheticConfig(num_classes=4, images_per_class=8, families=2, clutter=1)
    ds = generate(cfg, 32, seed=0, val_fraction=0.0, test_fraction=0.5)
    index = ds.index
    write_dataset(root / "dataset.zarr", index, ds, 8, {})
    rows = np.flatnonzero(index.split == 2)
    n, C, A = len(rows), len(index.class_names), len(index.attribute_names)
    labels = index.labels[rows]
    rng = np.random.default_rng(0)
    wrong = (labels + 1) % C
    layout = ChainLayout(MODELS, ("untargeted", "targeted"), EPS)

    attack = create_group(root / "attack.zarr", layout.to_attrs())
    write_array(attack, "rows", rows, dims=("sample",), chunk_size=8)
    write_array(attack, "labels", labels, dims=("sample",), chunk_size=8)
    write_array(attack, "targets", wrong, dims=("sample",), chunk_size=8)
    images = ds.load(rows)
    phi = index.class_attributes - index.class_attributes.mean(0)
    phi /= np.linalg.norm(phi, axis=1, keepdims=True)
    sje = create_group(root / "sje.zarr", layout.to_attrs())
    write_array(sje, "class_embeddings", phi.astype(np.float32), dims=("c", "a"), chunk_size=C)
    for name in ("rows", "labels", "targets"):
        write_array(sje, name, attack[name][:], dims=("sample",), chunk_size=8)
    for m in MODELS:
        # clean: all correct; adversarial: the first half fooled into `wrong`
        clean_all = index.labels.copy()
        write_array(attack, f"{m.key}/clean_pred", labels, dims=("sample",), chunk_size=8)
        z_all = phi[index.labels] + 0.05 * rng.standard_normal((index.num_samples, A))
        write_array(
            sje,
            f"{m.key}/clean/attributes",
            z_all.astype(np.float32),
            dims=("sample", "a"),
            chunk_size=8,
        )
        write_array(sje, f"{m.key}/clean/pred", clean_all, dims=("sample",), chunk_size=8)
        for mode in layout.modes:
            for e, ek in zip(layout.eps, layout.eps_keys, strict=True):
                fooled = np.arange(n) < n // 2 if m.key == "standard" else np.arange(n) < n // 4
                pred = np.where(fooled, wrong, labels)
                g = f"{m.key}/{mode}/{ek}"
                adv = np.clip(images + e * np.sign(rng.standard_normal(images.shape)), 0, 1)
                write_array(
                    attack,
                    f"{g}/images",
                    adv.astype(np.float32),
                    dims=("sample", "c", "y", "x"),
                    chunk_size=8,
                )
                write_array(attack, f"{g}/pred", pred, dims=("sample",), chunk_size=8)
                # adversarial attributes: moved most of the way to the wrong class
                z = np.where(fooled[:, None], 0.2 * phi[labels] + 0.8 * phi[wrong], phi[labels])
                write_array(
                    sje, f"{g}/attributes", z.astype(np.float32), dims=("sample", "a"), chunk_size=8
                )
                write_array(sje, f"{g}/pred", pred, dims=("sample",), chunk_size=8)
    params = tiny_params()
    params["train_detector"] = {"epochs": 1, "batch_size": 8, "eval_images": 8}
    (root / "params.yaml").write_text(yaml.safe_dump(params))
    return {
        "root": root,
        "params": root / "params.yaml",
        "n": n,
        "fooled": n // 2,
        "fooled_at": n // 4,
    }


def _run(stage: ModuleType, params: Path, **paths: Path) -> None:
    """Run a stage's ``main`` in this process with ``paths`` for its flags, seeded and
    threaded from ``base`` as :func:`stages.stage.run` does."""
    decl = stage.STAGE
    argv = ["--params", str(params), *decl.argv({k: str(v) for k, v in paths.items()})]
    io = StageIO(decl, decl.parser().parse_args(argv))
    seed_everything(io.base.seed)
    configure_threads(io.base.num_threads)
    stage.main(io)


@pytest.fixture(scope="module")
def detected(chain):
    r = chain["root"]
    _run(
        train_detector,
        chain["params"],
        dataset=r / "dataset.zarr",
        model=r / "det/detector.pt",
        metrics=r / "det/metrics.json",
        history=r / "det/history.csv",
    )
    _run(
        detect,
        chain["params"],
        dataset=r / "dataset.zarr",
        attack=r / "attack.zarr",
        detector=r / "det/detector.pt",
        out=r / "detect/detections.zarr",
        metrics=r / "detect/metrics.json",
    )
    return chain


def test_train_detector_outputs(detected):
    r = detected["root"]
    m = json.loads((r / "det/metrics.json").read_text())
    assert set(m["ap"]) == {"head", "bill", "wing", "belly", "tail"}
    assert m["eval_images"] == 8 and m["epochs"] == 1
    hist = pd.read_csv(r / "det/history.csv")
    assert list(hist["epoch"]) == [1] and "loss_attributes" in hist


def test_detect_store_layout(detected):
    r = detected["root"]
    store = open_store(r / "detect/detections.zarr", {"rows": 1})
    assert store.attrs["at_model"] == "at_0.06" and store.attrs["eps_key"] == "eps_0.06"
    sets = [
        "clean",
        "standard/untargeted",
        "standard/targeted",
        "at_0.06/untargeted",
        "at_0.06/targeted",
    ]
    assert store.attrs["sets"] == sets
    n = detected["n"]
    for s in sets:
        off = store[f"{s}/box_offsets"][:]
        assert off.shape == (n + 1,) and off[0] == 0 and np.all(np.diff(off) >= 0)
        m = off[-1]
        assert store[f"{s}/box_attribute_scores"].shape == (m, 65)
        assert store[f"{s}/box_xyxy"].shape == (m, 4)
    metrics = json.loads((r / "detect/metrics.json").read_text())
    assert metrics["images"] == n and set(sets) <= set(metrics)


def test_detect_rejects_eps_outside_the_grid(detected, tmp_path):
    r = detected["root"]
    params = yaml.safe_load(detected["params"].read_text())
    params["detect"] = {"eps": 0.05}
    p = tmp_path / "params.yaml"
    p.write_text(yaml.safe_dump(params))
    with pytest.raises(ParamError, match="detect.eps"):
        _run(
            detect,
            p,
            dataset=r / "dataset.zarr",
            attack=r / "attack.zarr",
            detector=r / "det/detector.pt",
            out=tmp_path / "d.zarr",
            metrics=tmp_path / "m.json",
        )


def test_ground_cases_figures_and_metrics(detected):
    r = detected["root"]
    _run(
        ground,
        detected["params"],
        dataset=r / "dataset.zarr",
        attack=r / "attack.zarr",
        sje=r / "sje.zarr",
        detections=r / "detect/detections.zarr",
        metrics=r / "ground/metrics.json",
        table=r / "ground/grounding.csv",
        **{f"figure_{case}": r / f"ground/figure6_{case}.png" for case in CASES},
    )
    m = json.loads((r / "ground/metrics.json").read_text())
    n, nf, nfa = detected["n"], detected["fooled"], detected["fooled_at"]
    assert m["untargeted"]["eligible"] == nf and m["targeted"]["eligible"] == nf
    assert m["at"]["eligible"] == nf - nfa  # fooled by standard, not by AT
    k = m["top_k"]
    assert m["untargeted"]["clean"]["selected"] == nf * k
    assert set(m["at"]) >= {"adversarial", "adversarial_at"}
    for case in ("untargeted", "targeted", "at"):
        png = r / f"ground/figure6_{case}.png"
        assert png.read_bytes()[:4] == b"\x89PNG" and png.stat().st_size > 5000
    table = pd.read_csv(r / "ground/grounding.csv")
    assert len(table) == 2 * (2 * nf + (nf - nfa))
    assert (table["grounded"] <= table["selected"]).all()
    assert (table["correct"] <= table["grounded"]).all() and (
        table["correct"] <= table["present"]
    ).all()
    assert n > nf


def test_distances_metrics_plots_and_the_wrong_class(detected):
    r = detected["root"]
    out = r / "distances"
    _run(
        distances,
        detected["params"],
        attack=r / "attack.zarr",
        sje=r / "sje.zarr",
        metrics=out / "metrics.json",
        table=out / "distances.csv",
        histograms=out / "histograms.csv",
        curve=out / "closer_to_wrong.csv",
        **{f"figure_{mode}": out / f"figure5_{mode}.png" for mode in MODES},
    )
    m = json.loads((out / "metrics.json").read_text())
    nf, nfa = detected["fooled"], detected["fooled_at"]
    for mode in ("untargeted", "targeted"):
        assert m[mode]["a"]["n"] == nf and m[mode]["c"]["n"] == nf
        assert m[mode]["b"]["n"] == nf - nfa and m[mode]["d"]["n"] == nfa
        # attributes were moved 80% of the way to the wrong class: closer to it, always
        assert m[mode]["c"]["fraction_d1_lt_d2"] == 1.0
        assert m[mode]["d"]["fraction_d1_lt_d2"] == 1.0
        # ... and they moved less far than the distance between the classes
        assert m[mode]["a"]["fraction_d1_lt_d2"] == 1.0
        assert (out / f"figure5_{mode}.png").stat().st_size > 5000
    assert m["closer_to_wrong_class"] == {"untargeted": 1.0, "targeted": 1.0}
    curve = pd.read_csv(out / "closer_to_wrong.csv")
    assert list(curve["eps"]) == list(EPS) and (curve["untargeted_c"] == 1.0).all()
    hist = pd.read_csv(out / "histograms.csv")
    bins = yaml.safe_load(detected["params"].read_text())["distances"]["bins"]
    assert len(hist) == bins and hist["untargeted_c_d1"].sum() == nf
    table = pd.read_csv(out / "distances.csv")
    assert len(table) == 2 * (nf + (nf - nfa) + nf + nfa)
