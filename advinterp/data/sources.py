"""Dataset sources by name: ``dataset.source`` -> (index, images).

Real sources read the layouts their users already have on disk and never download.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from advinterp.config.dataset import DatasetConfig
from advinterp.data import awa2, cub, digits, lad, synthetic
from advinterp.data.dataset import AttributeIndex, ImageSource, stratified_subset, subset_index
from advinterp.data.images import FileImages
from advinterp.errors import DatasetError

# Real-source modules each define read_index(root, val_fraction, test_fraction, seed)
# -> (AttributeIndex, list of image paths). Imported at the top, not on demand: the
# stages' DVC dependencies are the modules they import, so an edit to a reader must
# make the dataset stale.
_READERS = {"cub": cub, "awa2": awa2, "lad": lad}


def open_source(cfg: DatasetConfig, seed: int) -> tuple[AttributeIndex, ImageSource]:
    """Open the dataset ``cfg`` names; validate it; apply ``max_images``.

    Raises:
        DatasetError: naming the missing or malformed file.
    """
    images: ImageSource
    if cfg.source == "synthetic":
        ds = synthetic.generate(cfg.synthetic, cfg.image_size, seed, cfg.val_fraction, cfg.test_fraction)
        index, images, origin = ds.index, ds, "synthetic dataset"
        keep = _keep(index, cfg, seed)
        if keep is not None:
            index, images = subset_index(index, keep), _Subset(ds, keep)
    elif cfg.source == "digits":
        assert cfg.digits is not None  # checked by DatasetConfig
        dg = digits.generate(cfg.digits, cfg.image_size, seed, cfg.val_fraction, cfg.test_fraction)
        index, images, origin = dg.index, dg, "digits dataset"
        keep = _keep(index, cfg, seed)
        if keep is not None:
            index, images = subset_index(index, keep), _Subset(dg, keep)
    else:
        assert cfg.root is not None  # checked by DatasetConfig
        if not cfg.root.is_dir():
            raise DatasetError(f"{cfg.root}: dataset directory not found (dataset.root)")
        reader = _READERS[cfg.source]
        index, paths = reader.read_index(cfg.root, cfg.val_fraction, cfg.test_fraction, seed)
        keep = _keep(index, cfg, seed)
        if keep is not None:
            index, paths = subset_index(index, keep), [paths[i] for i in keep]
        files = FileImages(paths, cfg.image_size)
        files.check_exist()
        images, origin = files, str(cfg.root)
    index.validate(origin)
    return index, images


def _keep(index: AttributeIndex, cfg: DatasetConfig, seed: int) -> np.ndarray | None:
    if cfg.max_images is None or cfg.max_images >= index.num_samples:
        return None
    return stratified_subset(index.labels, cfg.max_images, seed)


class _Subset:
    """Rows ``keep`` of another image source."""

    def __init__(self, base: ImageSource, keep: np.ndarray):
        self.base, self.keep, self.image_size = base, keep, base.image_size

    def load(self, indices: Sequence[int]) -> np.ndarray:
        return self.base.load([int(self.keep[i]) for i in indices])
