"""ModelBase: the one method the engine calls on a contributor's model."""

import pytest

from modelhublib.model import ModelBase


def test_infer_is_abstract():
    with pytest.raises(NotImplementedError):
        ModelBase().infer(None)


def test_subclass_built_without_arguments_overrides_infer():
    class Model(ModelBase):
        def __init__(self):
            super().__init__()
            self.calls = []

        def infer(self, input):
            self.calls.append(input)
            return [{"label": "a", "probability": 1.0}]

    model = Model()
    assert model.infer("sample.png") == [{"label": "a", "probability": 1.0}]
    assert model.calls == ["sample.png"]
