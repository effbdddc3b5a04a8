"""Models that fail, each in its own way; used with this config-less folder and with the
single-input package."""

from modelhublib.model import ModelBase

SECRET = "/srv/secret/weights.bin is corrupt at 0xdeadbeef"


class UnimplementedModel(ModelBase):
    """Keeps ModelBase.infer, which raises NotImplementedError."""


class FaultyModel(ModelBase):
    """A bug inside the model: its message must never reach a caller."""

    def infer(self, input):
        raise RuntimeError(SECRET)


class UnreadableInputModel(ModelBase):
    """What ModelHub's loaders raise for a file they cannot read (it names the file)."""

    def infer(self, input):
        raise OSError(f'Was not able to load the file "{input}".')


class WrongDimensionsModel(ModelBase):
    """What ModelHub's loaders raise for a picture outside the config's dim_limits."""

    def infer(self, input):
        raise OSError("Image dimensions (1, 2, 4) do not comply with input requirements")
