"""Models for the single-input package: answers computed from the picture itself, so a test
can tell which file reached the model."""

import numpy as np
from PIL import Image

from modelhublib.model import ModelBase


def _grey_pixels(path):
    with Image.open(path) as image:
        return np.asarray(image.convert("L"), dtype=np.float32)


def brightness_labels(path):
    """The label list Model answers for the picture at `path`: bright first, as NumPy floats
    (the engine must serve them as plain JSON numbers)."""
    brightness = np.float32(round(float(_grey_pixels(path).mean()) / 255, 4))
    return [
        {"label": "bright", "probability": brightness},
        {"label": "dark", "probability": np.float32(1) - brightness},
    ]


def bright_mask(path):
    """The mask Model answers: 1 where a pixel is brighter than 127."""
    return (_grey_pixels(path) > 127).astype(np.uint8)


class Model(ModelBase):
    """Two outputs, as the config declares: a label list and an array."""

    def infer(self, input):
        return [brightness_labels(input), bright_mask(input)]


class ArrayModel(ModelBase):
    """Only the array, not in a list: the engine wraps it as the first output."""

    def infer(self, input):
        return bright_mask(input)


class ListOfOneArrayModel(ModelBase):
    def infer(self, input):
        return [bright_mask(input)]


class LabelListModel(ModelBase):
    """Only the label list, although the config declares two outputs."""

    def infer(self, input):
        return brightness_labels(input)


class TooManyOutputsModel(ModelBase):
    def infer(self, input):
        return [brightness_labels(input), bright_mask(input), bright_mask(input)]


class ScalarModel(ModelBase):
    """A plain number, which has no length: its shape is []."""

    def infer(self, input):
        return np.float64(0.5)
