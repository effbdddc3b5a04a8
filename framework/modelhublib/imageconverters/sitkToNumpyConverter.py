"""Converter for SimpleITK images (optional, like SimpleITK itself)."""

from __future__ import annotations

import sys

import numpy as np

from ..imageloaders.sitkImageLoader import simpleitk
from .imageConverter import ImageConverter


class SitkToNumpyConverter(ImageConverter):
    """Turns a `SimpleITK.Image` into float32 [1, depth, height, width].

    SimpleITK already orders the array (z, y, x); a 2-D image gets depth 1,
    so a 4x2 image gives (1, 1, 2, 4) and a 4x2x3 volume (1, 3, 2, 4).
    """

    def _convert(self, image: object) -> np.ndarray:
        # Until SimpleITK is imported no SimpleITK image can exist: refuse without importing it.
        if "SimpleITK" not in sys.modules or not isinstance(image, simpleitk().Image):
            raise OSError('Image is not of type "SimpleITK.Image".')
        array = simpleitk().GetArrayFromImage(image)
        if array.ndim == 2:
            array = array[np.newaxis]
        return array[np.newaxis].astype(np.float32)
