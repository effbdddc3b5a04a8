"""Image converters: the step of `ImageProcessorBase.loadAndPreprocess` that makes a numpy array.

`DEFAULT_CHAIN` matches the loader chain: Pillow, SimpleITK (only when it
is installed), then NumPy pass-through.
"""

from importlib.util import find_spec

from .imageConverter import ImageConverter
from .numpyToNumpyConverter import NumpyToNumpyConverter
from .pilToNumpyConverter import PilToNumpyConverter

if find_spec("SimpleITK") is None:  # optional: without it, no SimpleITK image can arrive
    DEFAULT_CHAIN: tuple[type[ImageConverter], ...] = (PilToNumpyConverter, NumpyToNumpyConverter)
else:
    from .sitkToNumpyConverter import SitkToNumpyConverter

    DEFAULT_CHAIN = (PilToNumpyConverter, SitkToNumpyConverter, NumpyToNumpyConverter)
