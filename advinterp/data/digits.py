"""The embedded digits: MNIST-like handwritten-looking digits drawn from shipped fonts.

Why it exists: Zheng et al. diagnose an MNIST model (their Table 1-2), and MNIST is the
domain of small CNNs, PGD at eps 0.3 and attention masks on strokes; no MNIST ships in
a package and nothing is downloaded. This source draws the ten digits in the fonts that
come with matplotlib (DejaVu, STIX, Computer Modern: 21 faces with upright, bold and
italic cuts) and makes them look written by hand:

* a random font, glyph height and stroke width (erosion or dilation of the glyph);
* a random affine map: rotation, horizontal shear, anisotropic scale, translation;
* an elastic distortion (Simard et al. 2003: a smoothed random displacement field);
* a random stroke brightness and Gaussian pixel noise;

on a black background with white strokes, 1 channel, like MNIST. The glyph is drawn and
warped on a canvas of twice the image side, then area-averaged down (anti-aliasing).
There are no attributes and no part boxes: the index carries labels, splits and the
class names ``"0"``..``"9"`` only.

Everything is a pure function of ``(seed, sample index)``, so any subset of images can
be rendered independently (and in parallel) and always comes out the same.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import matplotlib
import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont
from scipy import ndimage

from advinterp.config.dataset import DigitsConfig
from advinterp.data.dataset import AttributeIndex, stratified_split
from advinterp.errors import DatasetError

NUM_CLASSES = 10
SUPERSAMPLE = 2  # canvas side = SUPERSAMPLE * image side; area-averaged down at the end


def font_dir() -> Path:
    """Where matplotlib keeps its .ttf fonts."""
    return Path(matplotlib.get_data_path()) / "fonts" / "ttf"


def font_paths(names: Sequence[str]) -> list[Path]:
    """The .ttf file of each font stem in ``names``.

    Raises:
        DatasetError: naming the first font matplotlib does not ship (dataset.digits.fonts).
    """
    paths = [font_dir() / f"{name}.ttf" for name in names]
    for name, path in zip(names, paths, strict=True):
        if not path.is_file():
            raise DatasetError(
                f"dataset.digits.fonts: no font '{name}' in {font_dir()} "
                f"(use the stem of one of its .ttf files)"
            )
    return paths


@lru_cache(maxsize=256)
def _font(path: str, size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(path, size)


@dataclass(frozen=True)
class DigitsDataset:
    """The embedded digits: an index plus deterministic rendering of any sample.

    Attributes:
        index: labels, splits and class names (no attributes, no boxes).
        image_size: side of the square images in pixels.
        fonts: the .ttf file of each font, in ``config.fonts`` order.
    """

    index: AttributeIndex
    image_size: int
    seed: int
    config: DigitsConfig
    fonts: tuple[str, ...]

    def load(self, indices: Sequence[int]) -> np.ndarray:
        """Render samples ``indices``.

        Returns:
            (n, 1, S, S) float32 in [0, 1]: white strokes on black.
        """
        out = np.empty((len(indices), 1, self.image_size, self.image_size), dtype=np.float32)
        for k, i in enumerate(indices):
            out[k, 0] = render_digit(self, int(i))
        return out


def generate(
    cfg: DigitsConfig,
    image_size: int,
    seed: int,
    val_fraction: float = 0.1,
    test_fraction: float = 0.3,
) -> DigitsDataset:
    """Build the digits dataset (index only; pixels are drawn on ``load``).

    ``images_per_class`` images of each digit 0-9, split per class like the synthetic
    birds (:func:`stratified_split`). Deterministic in ``seed``.
    """
    paths = tuple(str(p) for p in font_paths(cfg.fonts))
    labels = np.repeat(np.arange(NUM_CLASSES), cfg.images_per_class).astype(np.int64)
    n = len(labels)
    index = AttributeIndex(
        name="digits",
        labels=labels,
        split=stratified_split(labels, val_fraction, test_fraction, seed),
        class_names=[str(c) for c in range(NUM_CLASSES)],
        attribute_names=[],
        class_attributes=np.zeros((NUM_CLASSES, 0), dtype=np.float32),
        sample_ids=[f"{i:06d}" for i in range(n)],
    )
    return DigitsDataset(index, image_size, seed, cfg, paths)


def render_digit(ds: DigitsDataset, i: int) -> np.ndarray:
    """Draw sample ``i``: its digit in a random font, stroke, pose and distortion.

    Returns:
        (S, S) float32 in [0, 1].
    """
    cfg, S = ds.config, ds.image_size
    side = SUPERSAMPLE * S
    r = np.random.default_rng([ds.seed, 3, i])
    digit = str(int(ds.index.labels[i]))
    glyph = _glyph(digit, ds.fonts[int(r.integers(len(ds.fonts)))], side, r.uniform(*cfg.height))
    # Stroke width: a 3x3 max (min) filter widens (thins) every stroke by one canvas
    # pixel per side; thinning stops short of erasing thin fonts (cmr10's hairlines).
    change = int(r.integers(cfg.stroke[0], cfg.stroke[1] + 1))
    for _ in range(abs(change)):
        filt = ImageFilter.MaxFilter(3) if change > 0 else ImageFilter.MinFilter(3)
        thinner = glyph.filter(filt)
        if change < 0 and np.asarray(thinner).max() < 128:
            break
        glyph = thinner
    canvas = np.asarray(glyph, dtype=np.float32) / 255.0
    warped = _warp(canvas, cfg, r)
    img = warped.reshape(S, SUPERSAMPLE, S, SUPERSAMPLE).mean(axis=(1, 3))
    img = img * r.uniform(*cfg.intensity) + r.normal(0.0, cfg.noise, img.shape)
    return np.clip(img, 0.0, 1.0).astype(np.float32)


def _glyph(digit: str, font: str, side: int, height: float) -> Image.Image:
    """The digit drawn white on black, its ink box centred and ``height * side`` tall."""
    size = max(4, round(height * side))
    face = _font(font, size)
    x0, y0, x1, y1 = face.getbbox(digit)
    # Fonts differ in how much of the em box a digit fills: rescale the point size so
    # the ink (not the em box) has the drawn height, as MNIST's 20 px box normalises it.
    size = max(4, round(size * size / max(y1 - y0, 1)))
    face = _font(font, size)
    x0, y0, x1, y1 = face.getbbox(digit)
    img = Image.new("L", (side, side), 0)
    draw = ImageDraw.Draw(img)
    draw.text(
        ((side - (x1 - x0)) / 2 - x0, (side - (y1 - y0)) / 2 - y0), digit, fill=255, font=face
    )
    return img


def _warp(canvas: np.ndarray, cfg: DigitsConfig, r: np.random.Generator) -> np.ndarray:
    """One bilinear resampling of ``canvas`` (side, side) by a random affine map plus an
    elastic displacement field (Simard et al. 2003), both about the centre."""
    side = canvas.shape[0]
    theta = np.deg2rad(r.uniform(-cfg.rotation, cfg.rotation))
    shear = r.uniform(-cfg.shear, cfg.shear)
    sx, sy = r.uniform(*cfg.scale), r.uniform(*cfg.scale)
    tx, ty = r.uniform(-cfg.translate, cfg.translate, 2) * side
    # Output (y, x) -> input (y, x): the inverse of scale, then shear, then rotation.
    rot = np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])
    forward = rot @ np.array([[1.0, 0.0], [shear, 1.0]]) @ np.diag([sy, sx])
    inverse = np.linalg.inv(forward)
    c = (side - 1) / 2.0
    yy, xx = np.mgrid[0:side, 0:side].astype(np.float64)
    dy, dx = yy - c - ty, xx - c - tx
    src_y = inverse[0, 0] * dy + inverse[0, 1] * dx + c
    src_x = inverse[1, 0] * dy + inverse[1, 1] * dx + c
    if cfg.elastic_alpha > 0:
        sigma, alpha = cfg.elastic_sigma * side, cfg.elastic_alpha * side
        for grid in (src_y, src_x):
            field = ndimage.gaussian_filter(r.uniform(-1, 1, (side, side)), sigma, mode="constant")
            # Normalise the smoothed field to unit peak so alpha is the largest shift
            # in canvas pixels whatever sigma is.
            grid += alpha * field / max(float(np.abs(field).max()), 1e-8)
    return ndimage.map_coordinates(canvas, [src_y, src_x], order=1, mode="constant", cval=0.0)
