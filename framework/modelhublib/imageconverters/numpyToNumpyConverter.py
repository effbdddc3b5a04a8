"""Converter for inputs that are already numpy arrays."""

from __future__ import annotations

import numpy as np

from .imageConverter import ImageConverter


class NumpyToNumpyConverter(ImageConverter):
    """Passes an `ndarray` through unchanged.

    It closes the chain so that `.npy` inputs, and preprocessing that already
    produced an array before conversion, need no special case.
    """

    def _convert(self, image: object) -> np.ndarray:
        if not isinstance(image, np.ndarray):
            raise OSError('Image is not of type "np.ndarray".')
        return image
