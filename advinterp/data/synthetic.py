"""The embedded attribute dataset: procedurally drawn "birds" whose parts carry attributes.

Why it exists: the attribute chain needs classes defined by attribute vectors, images
whose parts show those attributes, and ground-truth part boxes with per-box attribute
labels, at a size two CPU cores can train on in minutes. No public dataset ships in a
package, and CUB-200-2011 has no part boxes, only part points.

The model of the world, after CUB-200-2011:

* five parts (head, bill, wing, belly, tail), each with three attribute groups,
  colour (8 values), pattern (solid / striped / spotted) and size (small / large),
  giving ``part_group::value`` attributes such as ``wing_color::blue``;
* a class is a probability distribution over the values of each group; the
  class-attribute matrix (C, A) holds those probabilities, like CUB's continuous
  percentages. In *fine* mode classes come in families that share a prototype and
  depart from it in ``fine_differences`` groups (fine-grained, like CUB); in
  *coarse* mode every class draws all its groups independently (like AwA2);
* each image samples every group's value from its class, drops a part with
  probability ``dropout``, and draws the object at a random position, scale, pose
  and facing over a gradient background with clutter, plus pixel noise.

Everything is a pure function of ``(seed, sample index)``, so any subset of images can
be rendered independently (and in parallel) and always comes out the same.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from advinterp.config.dataset import SyntheticConfig
from advinterp.data.dataset import AttributeIndex, PartBoxes, stratified_split

PARTS = ("head", "bill", "wing", "belly", "tail")
COLORS = {
    "red": (0.85, 0.12, 0.10),
    "orange": (0.95, 0.55, 0.10),
    "yellow": (0.95, 0.88, 0.20),
    "green": (0.20, 0.65, 0.25),
    "blue": (0.15, 0.35, 0.85),
    "purple": (0.55, 0.20, 0.65),
    "brown": (0.50, 0.32, 0.15),
    "white": (0.95, 0.95, 0.95),
}
PATTERNS = ("solid", "striped", "spotted")
SIZES = ("small", "large")
GROUP_VALUES = {"color": tuple(COLORS), "pattern": PATTERNS, "size": SIZES}
GROUPS = tuple((part, kind) for part in PARTS for kind in GROUP_VALUES)
# Drawing order: later parts occlude earlier ones.
_PAINT_ORDER = ("tail", "belly", "wing", "head", "bill")
_SIZE_FACTOR = {"small": 0.8, "large": 1.2}


def attribute_names() -> list[str]:
    """``part_group::value`` names in group order (65 attributes)."""
    return [f"{part}_{kind}::{v}" for part, kind in GROUPS for v in GROUP_VALUES[kind]]


def _group_offsets() -> np.ndarray:
    sizes = [len(GROUP_VALUES[kind]) for _, kind in GROUPS]
    return np.concatenate([[0], np.cumsum(sizes)])


@dataclass(frozen=True)
class SyntheticAttributeDataset:
    """The embedded dataset: an index plus deterministic rendering of any sample.

    Attributes:
        index: labels, splits, names, class-attribute matrix, part boxes.
        image_size: side of the square images in pixels.
    """

    index: AttributeIndex
    image_size: int
    seed: int
    config: SyntheticConfig
    values: np.ndarray  # (N, G) int: sampled value of each attribute group per image
    present: np.ndarray  # (N, P) bool: part drawn or dropped

    def load(self, indices: Sequence[int]) -> np.ndarray:
        """Render samples ``indices``.

        Returns:
            (n, 3, S, S) float32 in [0, 1].
        """
        out = np.empty((len(indices), 3, self.image_size, self.image_size), dtype=np.float32)
        for k, i in enumerate(indices):
            out[k] = _render(self, int(i))[0]
        return out


def _class_distributions(cfg: SyntheticConfig, rng: np.random.Generator) -> np.ndarray:
    """Main value per (class, group), unique per class: (C, G) int."""
    n_values = np.array([len(GROUP_VALUES[kind]) for _, kind in GROUPS])
    G = len(GROUPS)
    seen: set[tuple[int, ...]] = set()
    mains = np.zeros((cfg.num_classes, G), dtype=np.int64)
    prototypes = np.stack([rng.integers(0, n_values) for _ in range(cfg.families)])
    for c in range(cfg.num_classes):
        for _ in range(1000):
            if cfg.mode == "fine":
                sig = prototypes[c % cfg.families].copy()
                for g in rng.choice(G, size=min(cfg.fine_differences, G), replace=False):
                    sig[g] = (sig[g] + rng.integers(1, n_values[g])) % n_values[g]
            else:
                sig = rng.integers(0, n_values)
            if tuple(sig) not in seen:
                break
        else:  # pragma: no cover - only with absurdly many classes for the attribute space
            raise ValueError("cannot draw distinct classes; lower num_classes")
        seen.add(tuple(sig))
        mains[c] = sig
    return mains


def class_attribute_matrix(
    mains: np.ndarray, cfg: SyntheticConfig, rng: np.random.Generator
) -> np.ndarray:
    """Per-class value probabilities (C, A) in [0, 1]; each group's block sums to 1."""
    offsets = _group_offsets()
    C = mains.shape[0]
    mat = np.zeros((C, offsets[-1]), dtype=np.float64)
    lo, hi = cfg.dominance
    for c in range(C):
        for g, (_, kind) in enumerate(GROUPS):
            k = len(GROUP_VALUES[kind])
            p_main = rng.uniform(lo, hi)
            rest = rng.dirichlet(np.ones(k - 1)) * (1.0 - p_main)
            probs = np.insert(rest, mains[c, g], p_main)
            mat[c, offsets[g] : offsets[g + 1]] = probs
    return mat.astype(np.float32)


def generate(
    cfg: SyntheticConfig,
    image_size: int,
    seed: int,
    val_fraction: float = 0.1,
    test_fraction: float = 0.3,
) -> SyntheticAttributeDataset:
    """Build the embedded dataset (index and per-image attribute draws; no pixels yet).

    Deterministic in ``seed``: the same arguments give identical labels, attributes,
    boxes and pixels on any machine with the same numpy.
    """
    rng = np.random.default_rng([seed, 0])
    mains = _class_distributions(cfg, rng)
    cam = class_attribute_matrix(mains, cfg, rng)
    offsets = _group_offsets()
    labels = np.repeat(np.arange(cfg.num_classes), cfg.images_per_class).astype(np.int64)
    N, G = len(labels), len(GROUPS)

    values = np.zeros((N, G), dtype=np.int64)
    present = np.ones((N, len(PARTS)), dtype=bool)
    for i in range(N):
        r = np.random.default_rng([seed, 1, i])
        for g in range(G):
            values[i, g] = r.choice(offsets[g + 1] - offsets[g], p=_probs(cam[labels[i]], offsets, g))
        present[i] = r.random(len(PARTS)) >= cfg.dropout
        if not present[i].any():
            present[i, PARTS.index("belly")] = True

    image_attributes = np.zeros((N, offsets[-1]), dtype=np.uint8)
    for g, (part, _) in enumerate(GROUPS):
        drawn = present[:, PARTS.index(part)]
        image_attributes[np.flatnonzero(drawn), offsets[g] + values[drawn, g]] = 1

    split = stratified_split(labels, val_fraction, test_fraction, seed)
    partial = SyntheticAttributeDataset(
        index=AttributeIndex(
            name="synthetic",
            labels=labels,
            split=split,
            class_names=[f"class_{c:03d}" for c in range(cfg.num_classes)],
            attribute_names=attribute_names(),
            class_attributes=cam,
            image_attributes=image_attributes,
            part_names=list(PARTS),
            sample_ids=[f"{i:06d}" for i in range(N)],
        ),
        image_size=image_size,
        seed=seed,
        config=cfg,
        values=values,
        present=present,
    )
    boxes = _all_boxes(partial)
    index = AttributeIndex(**{**partial.index.__dict__, "boxes": boxes})
    return SyntheticAttributeDataset(index, image_size, seed, cfg, values, present)


def _probs(row: np.ndarray, offsets: np.ndarray, g: int) -> np.ndarray:
    p = row[offsets[g] : offsets[g + 1]].astype(np.float64)
    return p / p.sum()


def _all_boxes(ds: SyntheticAttributeDataset) -> PartBoxes:
    offsets_out = [0]
    xyxy, part, attrs = [], [], []
    for i in range(ds.index.num_samples):
        _, label_map = _render(ds, i)
        for b in _boxes_from_label_map(label_map, ds, i):
            xyxy.append(b[0])
            part.append(b[1])
            attrs.append(b[2])
        offsets_out.append(len(part))
    A = len(ds.index.attribute_names)
    return PartBoxes(
        offsets=np.asarray(offsets_out, dtype=np.int64),
        xyxy=np.asarray(xyxy, dtype=np.float32).reshape(-1, 4),
        part=np.asarray(part, dtype=np.int64),
        attributes=np.asarray(attrs, dtype=np.uint8).reshape(-1, A),
    )


def _boxes_from_label_map(
    label_map: np.ndarray, ds: SyntheticAttributeDataset, i: int
) -> list[tuple[list[float], int, np.ndarray]]:
    S = label_map.shape[0]
    offsets = _group_offsets()
    out = []
    for p, name in enumerate(PARTS):
        ys, xs = np.nonzero(label_map == p + 1)
        if len(ys) < 3:  # hidden behind other parts or dropped
            continue
        attrs = np.zeros(offsets[-1], dtype=np.uint8)
        for g, (part, _) in enumerate(GROUPS):
            if part == name:
                attrs[offsets[g] + ds.values[i, g]] = 1
        box = [xs.min() / S, ys.min() / S, (xs.max() + 1) / S, (ys.max() + 1) / S]
        out.append((box, p, attrs))
    return out


def _render(ds: SyntheticAttributeDataset, i: int) -> tuple[np.ndarray, np.ndarray]:
    """Draw sample ``i``: ((3, S, S) float32 image in [0, 1], (S, S) part label map)."""
    cfg, S = ds.config, ds.image_size
    r = np.random.default_rng([ds.seed, 2, i])
    yy, xx = np.mgrid[0:S, 0:S].astype(np.float32) / S + 0.5 / S

    img = _background(r, xx, yy)
    for _ in range(cfg.clutter):
        _clutter(img, r, xx, yy)

    # Object frame: centre, scale, rotation and facing vary per image.
    cx, cy = r.uniform(0.38, 0.62), r.uniform(0.4, 0.6)
    scale = r.uniform(0.75, 1.05)
    theta = np.deg2rad(r.uniform(-25, 25))
    facing = 1.0 if r.random() < 0.5 else -1.0
    dx, dy = xx - cx, yy - cy
    u = (np.cos(theta) * dx + np.sin(theta) * dy) / scale * facing
    v = (-np.sin(theta) * dx + np.cos(theta) * dy) / scale

    label_map = np.zeros((S, S), dtype=np.int8)
    values = {GROUPS[g]: GROUP_VALUES[GROUPS[g][1]][ds.values[i, g]] for g in range(len(GROUPS))}
    for part in _PAINT_ORDER:
        p = PARTS.index(part)
        if not ds.present[i, p]:
            continue
        size = _SIZE_FACTOR[values[(part, "size")]]
        mask = _part_mask(part, u, v, size)
        colour = np.asarray(COLORS[values[(part, "color")]], dtype=np.float32)
        colour = np.clip(colour + r.normal(0, 0.03, 3), 0, 1)
        shade = _pattern(values[(part, "pattern")], u, v, r)
        fill = colour[:, None, None] * shade[None]
        img = np.where(mask[None], fill, img)
        label_map[mask] = p + 1

    img = img + r.normal(0.0, cfg.noise, img.shape).astype(np.float32)
    return np.clip(img, 0.0, 1.0).astype(np.float32), label_map


def _background(r: np.random.Generator, xx: np.ndarray, yy: np.ndarray) -> np.ndarray:
    c0, c1 = r.uniform(0.25, 0.75, 3), r.uniform(0.25, 0.75, 3)
    a = r.uniform(0, 2 * np.pi)
    t = np.clip(0.5 + (np.cos(a) * (xx - 0.5) + np.sin(a) * (yy - 0.5)), 0, 1)
    return (c0[:, None, None] * (1 - t) + c1[:, None, None] * t).astype(np.float32)


def _clutter(img: np.ndarray, r: np.random.Generator, xx: np.ndarray, yy: np.ndarray) -> None:
    colour = np.asarray(list(COLORS.values())[r.integers(len(COLORS))], dtype=np.float32)
    colour = 0.5 * colour + 0.5 * r.uniform(0.2, 0.8, 3).astype(np.float32)
    x0, y0 = r.uniform(0, 1, 2)
    if r.random() < 0.5:
        mask = (xx - x0) ** 2 + (yy - y0) ** 2 < r.uniform(0.02, 0.06) ** 2
    else:  # a twig: thin rotated bar
        a = r.uniform(0, np.pi)
        along = np.cos(a) * (xx - x0) + np.sin(a) * (yy - y0)
        across = -np.sin(a) * (xx - x0) + np.cos(a) * (yy - y0)
        mask = (np.abs(along) < r.uniform(0.08, 0.25)) & (np.abs(across) < 0.012)
    img[:, mask] = colour[:, None]


def _part_mask(part: str, u: np.ndarray, v: np.ndarray, size: float) -> np.ndarray:
    """Implicit shape of a part in object coordinates (u forward, v down, body ~0.6 long)."""
    if part == "belly":
        return ((u / (0.24 * size)) ** 2 + ((v - 0.04) / (0.14 * size)) ** 2) < 1
    if part == "wing":
        uu, vv = u + 0.04, v + 0.01
        ur = 0.97 * uu + 0.24 * vv
        vr = -0.24 * uu + 0.97 * vv
        return ((ur / (0.19 * size)) ** 2 + (vr / (0.075 * size)) ** 2) < 1
    if part == "head":
        return ((u - 0.24) ** 2 + (v + 0.1) ** 2) < (0.095 * size) ** 2
    if part == "bill":
        base, length, half = 0.31, 0.1 * size, 0.035
        t = (u - base) / length
        return (t > 0) & (t < 1) & (np.abs(v + 0.1) < half * (1 - t))
    if part == "tail":
        base, length, half = -0.18, 0.2 * size, 0.09
        t = (base - u) / length
        return (t > 0) & (t < 1) & (np.abs(v - 0.02) < 0.03 + half * t)
    raise ValueError(part)


def _pattern(kind: str, u: np.ndarray, v: np.ndarray, r: np.random.Generator) -> np.ndarray:
    """Brightness multiplier of a part's texture, in object coordinates."""
    if kind == "solid":
        return np.ones_like(u)
    phase = r.uniform(0, 1)
    if kind == "striped":
        return np.where(np.sin(2 * np.pi * (u / 0.05 + phase)) > 0, 1.0, 0.45).astype(np.float32)
    period = 0.06
    du = (u / period + phase) % 1.0 - 0.5
    dv = (v / period + phase) % 1.0 - 0.5
    return np.where(du**2 + dv**2 < 0.09, 0.4, 1.0).astype(np.float32)
