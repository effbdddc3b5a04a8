"""Loader for NumPy `.npy` arrays, for models whose input is not a picture."""

from __future__ import annotations

from typing import Any

import numpy as np

from .imageLoader import ImageLoader


class NumpyImageLoader(ImageLoader):
    """Reads a `.npy` file into an `ndarray`.

    Pickled objects are refused (NumPy's default), since loading one runs
    arbitrary code; an `.npz` archive is refused too, as it holds several
    arrays and is no single input.
    """

    def _load(self, input: Any) -> np.ndarray:
        array = np.load(input)
        if not isinstance(array, np.ndarray):
            array.close()
            raise OSError("An .npz archive holds several arrays, not one input.")
        return array

    def _getImageDimensions(self, image: np.ndarray) -> tuple[int, ...]:
        """The array's shape, read as [channels or depth, height, width, ...]."""
        return image.shape
