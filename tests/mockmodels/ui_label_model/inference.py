"""A small contributor package for the web UI and OpenAPI tests.

It names the dominant colour of a picture (a `label_list`), and returns a mask (an array,
which the engine serves as an HDF5 file) and the picture's size (plain JSON): one output of
each kind the UI shows differently. The processor lives in this module too: a top-level
`processing` module would clash with the SqueezeNet package's in `sys.modules`.
"""

import json
import os

import numpy as np

from modelhublib.model import ModelBase
from modelhublib.processor import ImageProcessorBase

HERE = os.path.dirname(os.path.abspath(__file__))
COLOURS = ("red", "green", "blue")


class ImageProcessor(ImageProcessorBase):
    def _preprocessBeforeConversionToNumpy(self, image):
        # Grey, palette and alpha pictures all become three colour channels.
        return image.convert("RGB")

    def computeOutput(self, inferenceResults):
        return inferenceResults


class Model(ModelBase):
    def __init__(self):
        with open(os.path.join(HERE, "model", "config.json"), encoding="utf-8") as file:
            self._imageProcessor = ImageProcessor(json.load(file))

    def infer(self, input):
        pixels = self._imageProcessor.loadAndPreprocess(input)[0]  # channels, height, width
        means = pixels.reshape(3, -1).mean(axis=1) + 1
        labels = [
            {"label": colour, "probability": float(share)}
            for colour, share in zip(COLOURS, means / means.sum(), strict=True)
        ]
        labels.sort(key=lambda entry: entry["probability"], reverse=True)
        mask = (pixels.max(axis=0) > 127).astype(np.uint8)
        size = {"height": int(pixels.shape[1]), "width": int(pixels.shape[2])}
        return self._imageProcessor.computeOutput([labels, mask, size])
