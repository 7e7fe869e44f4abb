"""Image files on disk as an :class:`~advinterp.data.dataset.ImageSource`."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from advinterp.errors import DatasetError


def load_image(path: Path, size: int) -> np.ndarray:
    """Read one image as RGB, resized (bilinear, antialiased) to ``size`` x ``size``.

    Returns:
        (3, size, size) float32 in [0, 1].

    Raises:
        DatasetError: the file is missing, truncated or not an image.
    """
    try:
        with Image.open(path) as im:
            rgb = im.convert("RGB").resize((size, size), Image.Resampling.BILINEAR)
            arr = np.asarray(rgb, dtype=np.float32) / 255.0
    except FileNotFoundError:
        raise DatasetError(f"{path}: image file not found") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as err:
        raise DatasetError(f"{path}: not a readable image ({err})") from None
    return np.ascontiguousarray(arr.transpose(2, 0, 1))


@dataclass(frozen=True)
class FileImages:
    """Images listed by path, loaded and resized on demand."""

    paths: Sequence[Path]
    image_size: int

    def load(self, indices: Sequence[int]) -> np.ndarray:
        out = np.empty((len(indices), 3, self.image_size, self.image_size), dtype=np.float32)
        for k, i in enumerate(indices):
            out[k] = load_image(self.paths[i], self.image_size)
        return out

    def check_exist(self) -> None:
        """Fail before any work if a listed file is missing (names the first few)."""
        missing = [p for p in self.paths if not Path(p).is_file()]
        if missing:
            extra = (
                f" ({len(missing) - 1} more listed files are missing)" if len(missing) > 1 else ""
            )
            raise DatasetError(f"{missing[0]}: image file not found{extra}")
