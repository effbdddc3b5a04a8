"""The multi-input model: the brightness of each of its two pictures."""

import numpy as np
from PIL import Image

from modelhublib.model import ModelBase

INPUTS = ("first", "second")


class Model(ModelBase):
    def infer(self, input):
        labels = []
        for name in INPUTS:
            with Image.open(input[name]["fileurl"]) as image:
                brightness = float(np.asarray(image.convert("L")).mean()) / 255
            labels.append({"label": name, "probability": round(brightness, 4)})
        return labels


class EchoModel(ModelBase):
    """Answers the inputs it was given, so tests can see what the engine passed on."""

    def infer(self, input):
        return [
            {"label": name, "fileurl": entry["fileurl"]}
            for name, entry in input.items()
            if name != "format"
        ]
