"""The converter chain: each converter turns one kind of image object into a numpy array."""

from __future__ import annotations

from typing import Any

import numpy as np


class ImageConverter:
    """Base of the converter chain of responsibility.

    Mirrors the loader chain: the image object may come from any loader (or
    from a contributor's `_preprocessBeforeConversionToNumpy`, which may
    return a different type), so each converter tries it in turn and the
    first that recognises the type converts it. Subclasses override
    `_convert`, raising for an object they do not handle.

    Args:
        successor: the next converter to try when this one refuses the image.
    """

    def __init__(self, successor: ImageConverter | None = None):
        self._successor = successor

    def setSuccessor(self, successor: ImageConverter | None) -> None:
        """Set the converter to try after this one."""
        self._successor = successor

    def convert(self, image: Any) -> np.ndarray:
        """Convert `image` with the first converter of the chain that can.

        Raises:
            OSError (alias IOError): no converter in the chain handles the image.
        """
        try:
            return self._convert(image)
        except Exception as error:
            if self._successor is None:
                raise OSError(
                    f'Could not convert image of type "{type(image).__name__}" to Numpy array.'
                ) from error
        return self._successor.convert(image)

    def _convert(self, image: Any) -> np.ndarray:
        """Return `image` as an array [batch, channels or depth, height, width], or raise."""
        raise NotImplementedError("This is a method of an abstract class.")
