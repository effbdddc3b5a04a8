"""The contributor's data pipeline: input file -> numpy array for the model -> output."""

from __future__ import annotations

from collections.abc import Sequence
from itertools import pairwise
from typing import Any, TypeVar

import numpy as np

from . import imageconverters, imageloaders


class ImageProcessorBase:
    """Base of a contributor's `ImageProcessor`: pre- and post-processing around inference.

    `loadAndPreprocess` is a fixed sequence of four steps, each a method a
    contributor may override: `_load` (the loader chain),
    `_preprocessBeforeConversionToNumpy` (on the library's image object),
    `_convertToNumpy` (the converter chain) and
    `_preprocessAfterConversionToNumpy` (on the array). `computeOutput` turns
    the model's raw result into the outputs the config declares.

    The chains are plain attributes (`_imageLoader`, `_imageToNumpyConverter`)
    so a subclass can extend them in its `__init__` after calling this one,
    e.g. with a loader for a format the defaults do not read.

    Args:
        config: the model's parsed `config.json`; the loaders check inputs
            against its `dim_limits`.
    """

    def __init__(self, config: dict):
        self._config = config
        self._imageLoader = _chain([loader(config) for loader in imageloaders.DEFAULT_CHAIN])
        self._imageToNumpyConverter = _chain(
            [converter() for converter in imageconverters.DEFAULT_CHAIN]
        )

    def loadAndPreprocess(self, input: Any, id: str | None = None) -> Any:
        """Load and preprocess `input` (a file path) into what the model takes.

        That is normally a numpy array [batch, channels or depth, height,
        width]. `id` is the input's key in a multi-input config (`None` for a
        single-input model). Override the steps, not this method.
        """
        image = self._load(input, id)
        image = self._preprocessBeforeConversionToNumpy(image)
        npArr = self._convertToNumpy(image)
        return self._preprocessAfterConversionToNumpy(npArr)

    def computeOutput(self, inferenceResults: Any) -> Any:
        """Turn the model's raw result into the outputs the config declares; always overridden."""
        raise NotImplementedError("This is a method of an abstract class.")

    def _load(self, input: Any, id: str | None = None) -> Any:
        """Step 1: read the input with the loader chain (an IOError if nothing can)."""
        return self._imageLoader.load(input, id)

    def _preprocessBeforeConversionToNumpy(self, image: Any) -> Any:
        """Step 2: preprocess the library's image object (resize, crop...); identity by default."""
        return image

    def _convertToNumpy(self, image: Any) -> np.ndarray:
        """Step 3: turn the image object into a numpy array with the converter chain."""
        return self._imageToNumpyConverter.convert(image)

    def _preprocessAfterConversionToNumpy(self, npArr: np.ndarray) -> Any:
        """Step 4: preprocess the numpy array (normalise, reorder, ...); identity by default."""
        return npArr


_Handler = TypeVar("_Handler", imageloaders.ImageLoader, imageconverters.ImageConverter)


def _chain(handlers: Sequence[_Handler]) -> _Handler:
    """Link `handlers` in order with `setSuccessor` and return the first one."""
    for handler, successor in pairwise(handlers):
        handler.setSuccessor(successor)
    return handlers[0]
