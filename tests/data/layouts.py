"""Tiny dataset directories in the exact on-disk layouts of CUB-200-2011, AwA2 and LAD.

Each ``make_*`` writes a complete, valid layout under ``root`` (small generated JPEGs)
and returns what a correct reader must produce from it, so tests can compare against
hand-known values and then break one file at a time.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def jpeg(path: Path, size: tuple[int, int], colour: tuple[int, int, int]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, colour).save(path, "JPEG", quality=80)


def rewrite_line(path: Path, line: int, text: str | None) -> None:
    """Replace line ``line`` (1-based) of a text file with ``text``, or delete it (None)."""
    lines = path.read_text().splitlines()
    if text is None:
        del lines[line - 1]
    else:
        lines[line - 1] = text
    path.write_text("\n".join(lines) + "\n")


# --------------------------------------------------------------------------- CUB

CUB_CLASSES = ["001.Black_footed_Albatross", "002.Laysan_Albatross", "003.Sooty_Albatross"]
CUB_ATTRIBUTES = [
    "has_bill_shape::hooked_seabird",
    "has_wing_color::black",
    "has_wing_color::white",
    "has_breast_pattern::solid",
    "has_size::large_(16_-_32_in)",
    "has_tail_shape::fan-shaped_tail",
]
CUB_PARTS = [
    "back", "beak", "belly", "breast", "crown", "forehead", "left eye", "left leg",
    "left wing", "nape", "right eye", "right leg", "right wing", "tail", "throat",
]  # fmt: skip
CUB_PER_CLASS = 4  # 3 official train + 1 official test per class


def cub_expected() -> dict:
    C, A, P = len(CUB_CLASSES), len(CUB_ATTRIBUTES), len(CUB_PARTS)
    N = C * CUB_PER_CLASS
    rng = np.random.default_rng(7)
    labels = np.repeat(np.arange(C), CUB_PER_CLASS)
    is_train = np.tile([1, 1, 1, 0], C)
    percent = np.round(rng.uniform(0, 100, (C, A)), 2)
    present = rng.integers(0, 2, (N, A)).astype(np.uint8)
    sizes = np.array([(48 + 8 * (i % 3), 36 + 4 * (i % 2)) for i in range(N)])  # (w, h)
    bird = np.array([(4.0, 3.0, 30.0, 24.0)] * N)  # x, y, w, h
    visible = rng.integers(0, 2, (N, P))
    visible[:, CUB_PARTS.index("beak")] = 1
    points = np.stack(
        [rng.uniform(5, sizes[:, :1] - 5, (N, P)), rng.uniform(5, sizes[:, 1:] - 5, (N, P))],
        axis=-1,
    ).round(1)
    return {
        "labels": labels,
        "is_train": is_train,
        "percent": percent,
        "present": present,
        "sizes": sizes,
        "bird": bird,
        "visible": visible,
        "points": points,
        "paths": [
            f"{CUB_CLASSES[c]}/{CUB_CLASSES[c][4:]}_{i:04d}.jpg" for i, c in enumerate(labels)
        ],
    }


def make_cub(root: Path) -> dict:
    """``root`` = the CUB_200_2011 directory; attributes.txt beside it, as in the tarball."""
    e = cub_expected()
    N = len(e["labels"])
    cub = root / "CUB_200_2011"
    write(cub / "images.txt", "".join(f"{i + 1} {p}\n" for i, p in enumerate(e["paths"])))
    write(
        cub / "image_class_labels.txt",
        "".join(f"{i + 1} {c + 1}\n" for i, c in enumerate(e["labels"])),
    )
    write(
        cub / "train_test_split.txt",
        "".join(f"{i + 1} {t}\n" for i, t in enumerate(e["is_train"])),
    )
    write(cub / "classes.txt", "".join(f"{k + 1} {n}\n" for k, n in enumerate(CUB_CLASSES)))
    write(root / "attributes.txt", "".join(f"{k + 1} {n}\n" for k, n in enumerate(CUB_ATTRIBUTES)))
    write(
        cub / "attributes" / "class_attribute_labels_continuous.txt",
        "".join(" ".join(f"{v:.2f}" for v in row) + "\n" for row in e["percent"]),
    )
    lines = []
    for i in range(N):
        for a in range(len(CUB_ATTRIBUTES)):
            line = f"{i + 1} {a + 1} {e['present'][i, a]} 3 {1.5 + a:.3f}"
            if i == 2 and a == 1:
                line += " 0 2.001"  # the real file has a few lines with extra fields
            lines.append(line + "\n")
    write(cub / "attributes" / "image_attribute_labels.txt", "".join(lines))
    write(
        cub / "attributes" / "certainties.txt",
        "1 not visible\n2 guessing\n3 probably\n4 definitely\n",
    )
    write(
        cub / "bounding_boxes.txt",
        "".join(
            f"{i + 1} " + " ".join(f"{v:.1f}" for v in b) + "\n" for i, b in enumerate(e["bird"])
        ),
    )
    write(cub / "parts" / "parts.txt", "".join(f"{k + 1} {n}\n" for k, n in enumerate(CUB_PARTS)))
    locs = []
    for i in range(N):
        for p in range(len(CUB_PARTS)):
            x, y = e["points"][i, p] if e["visible"][i, p] else (0.0, 0.0)
            locs.append(f"{i + 1} {p + 1} {x:.1f} {y:.1f} {e['visible'][i, p]}\n")
    write(cub / "parts" / "part_locs.txt", "".join(locs))
    for i, p in enumerate(e["paths"]):
        jpeg(cub / "images" / p, tuple(e["sizes"][i]), (40 * e["labels"][i], 100, 180))
    return e


# --------------------------------------------------------------------------- AwA2

AWA_CLASSES = ["antelope", "grizzly+bear", "killer+whale"]
AWA_PREDICATES = ["black", "white", "blue", "brown", "gray"]
AWA_PER_CLASS = 6


def make_awa2(root: Path) -> dict:
    """``root`` = the Animals_with_Attributes2 directory."""
    rng = np.random.default_rng(3)
    strengths = np.round(rng.uniform(0, 100, (len(AWA_CLASSES), len(AWA_PREDICATES))), 2)
    strengths[1, 2] = -1.0  # a missing value, as the dataset marks them
    write(root / "classes.txt", "".join(f"{k + 1}\t{n}\n" for k, n in enumerate(AWA_CLASSES)))
    write(root / "predicates.txt", "".join(f"{k + 1}\t{n}\n" for k, n in enumerate(AWA_PREDICATES)))
    write(
        root / "predicate-matrix-continuous.txt",
        "".join(" ".join(f"{v:7.2f}" for v in row) + "\n" for row in strengths),
    )
    write(root / "predicate-matrix-binary.txt", "".join("0 1 0 1 0\n" for _ in AWA_CLASSES))
    for c, name in enumerate(AWA_CLASSES):
        for k in range(AWA_PER_CLASS):
            # numbered out of order on purpose: the reader sorts file names
            jpeg(root / "JPEGImages" / name / f"{name}_{10001 + (5 * k) % AWA_PER_CLASS}.jpg",
                 (24 + k, 20), (50 * c, 90, 30))  # fmt: skip
    return {"strengths": strengths}


# --------------------------------------------------------------------------- LAD

LAD_LABELS = [
    ("Label_A_01", "dog", "狗"),
    ("Label_A_02", "cat", "猫"),
    ("Label_F_01", "apple", "苹果"),
]
LAD_ATTRIBUTES = [("Attr_A_001", "is black"), ("Attr_A_002", "has fur"), ("Attr_F_001", "is red"),
                  ("Attr_F_002", "is round")]  # fmt: skip
LAD_PER_CLASS = 5


def make_lad(root: Path) -> dict:
    """``root`` holds LAD_annotations/ and LAD_images/."""
    rng = np.random.default_rng(5)
    ann = root / "LAD_annotations"
    C, A = len(LAD_LABELS), len(LAD_ATTRIBUTES)
    per_class = np.round(rng.uniform(0, 1, (C, A)), 3)
    write(ann / "label_list.txt", "".join(f"{i}, {en}, {zh}\n" for i, en, zh in LAD_LABELS))
    write(ann / "attribute_list.txt", "".join(f"{i}, {n}\n" for i, n in LAD_ATTRIBUTES))
    write(
        ann / "attributes_per_class.txt",
        "".join(
            f"{LAD_LABELS[c][0]}, [ " + " ".join(f"{v:.3f}" for v in per_class[c]) + " ]\n"
            for c in range(C)
        ),
    )
    ids, labels, paths, train = [], [], [], []
    for c in range(C):
        super_class = "animals" if LAD_LABELS[c][0][6] == "A" else "fruits"
        for k in range(LAD_PER_CLASS):
            n = len(ids) + 1
            ids.append(f"Image_{n}")
            labels.append(c)
            paths.append(f"{super_class}/{LAD_LABELS[c][0]}/{n:06d}.jpg")
            train.append(k < 3)
    image_attrs = rng.integers(0, 2, (len(ids), A)).astype(np.uint8)
    write(
        ann / "images.txt",
        "".join(
            f"{ids[i]}, {LAD_LABELS[labels[i]][0]}, [{3 + i}, {4 + i}, 30, 28], {paths[i]}\n"
            for i in range(len(ids))
        ),
    )
    write(
        ann / "split_supervisedlearning.txt",
        "train:\n"
        + "".join(f"{ids[i]}\n" for i in range(len(ids)) if train[i])
        + "test:\n"
        + "".join(f"{ids[i]}\n" for i in range(len(ids)) if not train[i]),
    )
    write(
        ann / "attributes.txt",
        "".join(
            f"{LAD_LABELS[labels[i]][0]}, {paths[i]}, [ "
            + " ".join(str(v) for v in image_attrs[i])
            + " ]\n"
            for i in range(len(ids))
        ),
    )
    write(ann / "split_zsl.txt", "Unseen_List_1: Label_A_02, Label_F_01\n")
    for i, p in enumerate(paths):
        jpeg(root / "LAD_images" / p, (30 + i % 4, 26), (20 * labels[i], 60, 120))
    return {
        "ids": ids,
        "labels": np.asarray(labels),
        "paths": paths,
        "train": np.asarray(train),
        "per_class": per_class,
        "image_attrs": image_attrs,
    }


# ---------------------------------------------------------- a CUB layout to run the DAG on

# The synthetic birds' parts and attribute groups, under the CUB names whose part ->
# group mapping (advinterp.data.cub.PART_ATTRIBUTE_GROUPS) ties them back together.
SYNTHETIC_AS_CUB_PART = {
    "head": "crown",
    "bill": "beak",
    "wing": "left wing",
    "belly": "belly",
    "tail": "tail",
}
SYNTHETIC_AS_CUB_GROUP = {
    "head_color": "has_crown_color",
    "head_pattern": "has_head_pattern",
    "head_size": "has_size",  # a whole-bird group: in no part box
    "bill_color": "has_bill_color",
    "bill_pattern": "has_bill_shape",
    "bill_size": "has_bill_length",
    "wing_color": "has_wing_color",
    "wing_pattern": "has_wing_pattern",
    "wing_size": "has_wing_shape",
    "belly_color": "has_belly_color",
    "belly_pattern": "has_belly_pattern",
    "belly_size": "has_underparts_color",
    "tail_color": "has_upper_tail_color",
    "tail_pattern": "has_tail_pattern",
    "tail_size": "has_tail_shape",
}


def make_cub_world(
    root: Path, num_classes: int, images_per_class: int, image_size: int = 32, seed: int = 0
) -> Path:
    """A complete CUB_200_2011 directory at ``root`` drawn by the synthetic generator:
    learnable classes, CUB's file layout, part names and attribute groups, so every
    stage of the DAG can run on it (:func:`make_cub` is the reader tests' hand-known one).

    The official split is the generator's (val and test -> test); part points are the
    centres of the synthetic part boxes. Returns the ``CUB_200_2011`` directory.
    """
    from advinterp.config.dataset import SyntheticConfig
    from advinterp.data.synthetic import generate

    cfg = SyntheticConfig(
        num_classes=num_classes,
        images_per_class=images_per_class,
        families=max(1, num_classes // 2),
        clutter=2,
    )
    ds = generate(cfg, image_size, seed, 0.2, 0.3)
    index = ds.index
    assert index.boxes is not None and index.image_attributes is not None
    classes = [f"{c + 1:03d}.Bird_{c + 1:03d}" for c in range(num_classes)]
    attributes = []
    for name in index.attribute_names:
        group, value = name.split("::")
        attributes.append(f"{SYNTHETIC_AS_CUB_GROUP[group]}::{value}")
    paths = [f"{classes[c]}/Bird_{c + 1:03d}_{i:04d}.jpg" for i, c in enumerate(index.labels)]
    cub = root / "CUB_200_2011"
    ids = range(1, len(paths) + 1)
    write(cub / "images.txt", "".join(f"{i} {p}\n" for i, p in zip(ids, paths, strict=True)))
    write(
        cub / "image_class_labels.txt",
        "".join(f"{i} {c + 1}\n" for i, c in zip(ids, index.labels, strict=True)),
    )
    write(
        cub / "train_test_split.txt",
        "".join(f"{i} {int(s == 0)}\n" for i, s in zip(ids, index.split, strict=True)),
    )
    write(cub / "classes.txt", "".join(f"{k + 1} {n}\n" for k, n in enumerate(classes)))
    write(root / "attributes.txt", "".join(f"{k + 1} {n}\n" for k, n in enumerate(attributes)))
    write(
        cub / "attributes" / "class_attribute_labels_continuous.txt",
        "".join(" ".join(f"{100 * v:.2f}" for v in row) + "\n" for row in index.class_attributes),
    )
    write(
        cub / "attributes" / "image_attribute_labels.txt",
        "".join(
            f"{i} {a + 1} {int(v)} 3 1.0\n"
            for i, row in zip(ids, index.image_attributes, strict=True)
            for a, v in enumerate(row)
        ),
    )
    write(cub / "bounding_boxes.txt", "".join(f"{i} 0 0 {image_size} {image_size}\n" for i in ids))
    write(cub / "parts" / "parts.txt", "".join(f"{k + 1} {n}\n" for k, n in enumerate(CUB_PARTS)))
    locs = []
    boxes = index.boxes
    for n, i in enumerate(ids):
        centres = {}
        for b in range(*boxes.of(n).indices(len(boxes.part))):
            part = SYNTHETIC_AS_CUB_PART[index.part_names[int(boxes.part[b])]]
            x0, y0, x1, y1 = boxes.xyxy[b] * image_size
            centres[part] = ((x0 + x1) / 2, (y0 + y1) / 2)
        for p, part in enumerate(CUB_PARTS):
            x, y = centres.get(part, (0.0, 0.0))
            locs.append(f"{i} {p + 1} {x:.1f} {y:.1f} {int(part in centres)}\n")
    write(cub / "parts" / "part_locs.txt", "".join(locs))
    pixels = ds.load(list(range(len(paths))))
    for p, img in zip(paths, pixels, strict=True):
        (cub / "images" / p).parent.mkdir(parents=True, exist_ok=True)
        rgb = (np.clip(img.transpose(1, 2, 0), 0, 1) * 255).round().astype(np.uint8)
        Image.fromarray(rgb).save(cub / "images" / p, "JPEG", quality=95)
    return cub
