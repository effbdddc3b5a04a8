"""The interface between the engine and a contributor's model."""

from typing import Any


class ModelBase:
    """Base class of a contributor's `Model`.

    The engine only ever calls `infer`, so that is the whole contract; a
    subclass loads its weights in `__init__` (which takes no arguments, as
    `run.py` and `modelapi.py` build it with `Model()`).
    """

    def infer(self, input: Any) -> Any:
        """Run the model on `input` (a file path, or a dict of inputs for multi-input models).

        Raises NotImplementedError here, so a package that forgot to override
        it fails loudly instead of returning nothing.
        """
        raise NotImplementedError("This is a method of an abstract class.")
