"""Converter for Pillow images."""

from __future__ import annotations

import numpy as np
from PIL import Image

from .imageConverter import ImageConverter


class PilToNumpyConverter(ImageConverter):
    """Turns a `PIL.Image.Image` into float32 [1, bands, height, width].

    Bands move to the front because models take channels first; values are
    kept as they are (scaling is the contributor's preprocessing). This is
    where a lazily opened image is decoded; one that cannot be (truncated,
    corrupt) is closed at once, as it is of no further use and would
    otherwise hold its file open until garbage collection.
    """

    def _convert(self, image: object) -> np.ndarray:
        if not isinstance(image, Image.Image):
            raise OSError('Image is not of type "PIL.Image.Image".')
        try:
            array = np.asarray(image)
        except Exception:
            image.close()
            raise
        array = array[np.newaxis] if array.ndim == 2 else np.moveaxis(array, -1, 0)
        return array[np.newaxis].astype(np.float32)
