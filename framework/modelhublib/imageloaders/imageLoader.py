"""The loader chain: each loader tries one kind of file and hands on what it cannot read."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


class ImageLoader:
    """Base of the loader chain of responsibility.

    A model accepts several file formats, each read by a different library.
    Rather than guessing the format up front, `load` lets each loader try in
    turn (`_load`), so a contributor adds a format by writing one loader and
    linking it with `setSuccessor`. Only the loader that read the image checks
    it against the config's `dim_limits`, since only it knows how to measure it.

    Subclasses override `_load` and `_getImageDimensions`; `load` and
    `_checkConfigCompliance` are the same for every loader.

    Args:
        config: the model's parsed `config.json` (`None` is fine for a loader
            never asked to check dimensions).
        successor: the next loader to try when this one fails.
    """

    def __init__(self, config: dict | None, successor: ImageLoader | None = None):
        self._config = config
        self._successor = successor

    def setSuccessor(self, successor: ImageLoader | None) -> None:
        """Set the loader to try after this one."""
        self._successor = successor

    def load(self, input: Any, id: str | None = None) -> Any:
        """Load `input` with the first loader of the chain that can, and check its dimensions.

        `id` names the input in a multi-input config (`None`: the `"single"`
        input); it is passed along the chain, so whichever loader succeeds
        checks the right `dim_limits`. A failed `_load` of any kind moves on
        to the successor, because libraries disagree on what they raise for a
        file that is not theirs. When no loader is left, the error names the
        file (or the type of a non-path input): that is what the API shows.

        Raises:
            OSError (alias IOError): no loader could read the input, or the
                image breaks the config's `dim_limits`.
        """
        try:
            image = self._load(input)
        except Exception as error:
            if self._successor is None:
                raise OSError(_load_failure_message(input)) from error
        else:
            self._checkConfigCompliance(image, id)
            return image
        return self._successor.load(input, id)

    def _load(self, input: Any) -> Any:
        """Read `input` into the library's own image object; raise if the file is not for it."""
        raise NotImplementedError("This is a method of an abstract class.")

    def _getImageDimensions(self, image: Any) -> Sequence[int]:
        """Return the dimensions of an image read by `_load`: [channels or depth, height, width]."""
        raise NotImplementedError("This is a method of an abstract class.")

    def _checkConfigCompliance(self, image: Any, id: str | None = None) -> None:
        """Raise OSError if `image` breaks the `dim_limits` of input `id` (or of `"single"`).

        The dimensions are asked for before the config is read, so on the
        abstract base this raises NotImplementedError whatever the config.
        """
        dims = self._getImageDimensions(image)
        limits = _dim_limits(self._config["model"]["io"]["input"], id)
        if not _fits_limits(dims, limits):
            shown = tuple(int(size) for size in dims)
            raise OSError(f"Image dimensions {shown} do not comply with input requirements")


def _dim_limits(inputs: dict, id: str | None) -> Sequence[dict]:
    """The `dim_limits` of input `id`; for a single-input model those of `"single"`, or, in
    configs written before multi-input support, those directly under `input`."""
    if id is not None:
        return inputs[id]["dim_limits"]
    return inputs["single"]["dim_limits"] if "single" in inputs else inputs["dim_limits"]


def _load_failure_message(input: Any) -> str:
    if isinstance(input, str):
        return f'Was not able to load the file "{input}".'
    return f'Was not able to load input of type "{type(input).__name__}".'


def _fits_limits(dims: Sequence[int], limits: Sequence[dict]) -> bool:
    """True if every axis lies within its limit (`min` and `max` both optional).

    An axis the image does not have fits only a limit that sets no bound.
    """
    for axis, limit in enumerate(limits[:3]):  # ModelHub checks [c/z, h, w] only
        if axis >= len(dims):
            if "min" in limit or "max" in limit:
                return False
        elif not limit.get("min", dims[axis]) <= dims[axis] <= limit.get("max", dims[axis]):
            return False
    return True
